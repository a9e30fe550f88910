"""Celery tasks with typed inputs and production defaults; see README.md."""

from importlib.metadata import version

# pyproject.toml is the one place the version is written; the installed metadata
# carries it here, so a release bumps a single line.
__version__ = version("{{ cookiecutter.project_slug }}")
