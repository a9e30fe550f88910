"""Benchmarks of the template itself (the generated project has its own)."""
