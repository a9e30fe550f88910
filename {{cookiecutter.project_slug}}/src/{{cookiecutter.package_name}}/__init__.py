"""Celery tasks with typed inputs and production defaults; see README.md."""

__version__ = "{{ cookiecutter.version }}"
