"""Benchmarks: scripts that measure what the production setup costs, and print it.

``make bench`` (``uv run python -m benchmarks``) runs them against the test profile's
broker on 127.0.0.1, each bounded in tasks and time, and writes a JSON file, a
Markdown table and a PNG plot to benchmarks/results/. Tests run each at ``--size
tiny`` to prove it still works; no test judges a number.
"""
