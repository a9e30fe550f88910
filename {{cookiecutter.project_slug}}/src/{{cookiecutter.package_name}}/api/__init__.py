"""HTTP front door: enqueue typed tasks, track them, check health."""

from .app import create_api

__all__ = ["create_api"]
