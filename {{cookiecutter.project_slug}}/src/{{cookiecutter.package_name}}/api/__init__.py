"""HTTP front door: enqueue typed tasks and read their results."""

from .app import create_api

__all__ = ["create_api"]
