"""``python -m {{ cookiecutter.package_name }}`` runs the command line."""

from .cli import main

main()
