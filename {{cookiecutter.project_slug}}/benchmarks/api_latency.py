"""Enqueue latency (p50, p95, p99): through the API, and direct from Python.

Both sides run as ``CLIENTS`` separate client processes, each sending its share one
request at a time, so neither shares a GIL with what it measures. Direct clients
call ``process_data.delay``; API clients POST /tasks/process_data to the project's
API (``<slug> api``, production's worker behaviour) in its own process. No worker
runs: this is the publish path alone, and the queue is emptied afterwards.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from statistics import quantiles
from typing import Any

import httpx2

from {{ cookiecutter.package_name }}.celery_app import (
    create_app,
)
from {{ cookiecutter.package_name }}.tasks.data import (
    ProcessDataInput,
    process_data,
)

from .workers import PACKAGE, PRODUCTION_LIKE, environment, free_port, project_settings

CLIENTS = 4
WARM_UP = 5  # requests per client before timing: connections are made once
RECORD = {"value": 1, "label": "benchmark"}


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50, p95 and p99 of latencies in seconds, as milliseconds."""
    cuts = quantiles(samples, n=100, method="inclusive")
    return {name: cuts[index] * 1000 for name, index in (("p50", 49), ("p95", 94), ("p99", 98))}


def direct_client(count: int) -> list[float]:
    """In a client process: ``count`` timed ``process_data.delay`` calls."""
    create_app(project_settings(PRODUCTION_LIKE))
    record = ProcessDataInput.model_validate(RECORD)
    return timed_calls(lambda: process_data.delay(record), count)


def api_client(url: str, count: int) -> list[float]:
    """In a client process: ``count`` timed POSTs of process_data to the API."""
    with httpx2.Client(base_url=url, timeout=30) as client:
        return timed_calls(
            lambda: client.post("/tasks/process_data", json=RECORD).raise_for_status(), count
        )


def timed_calls(call: Callable[[], object], count: int) -> list[float]:
    """Seconds each of ``count`` calls took, after a few untimed ones."""
    for _ in range(WARM_UP):
        call()
    latencies = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - start)
    return latencies


def in_processes(client: Callable[[int], list[float]], requests: int) -> list[float]:
    """Every latency ``CLIENTS`` client processes measured, ``requests`` in all."""
    # spawn: each client starts clean, with no connection inherited from this process.
    with multiprocessing.get_context("spawn").Pool(CLIENTS) as pool:
        shares = pool.map(client, [max(requests // CLIENTS, 1)] * CLIENTS)
    return [latency for share in shares for latency in share]


@contextmanager
def api_server() -> Iterator[str]:
    """The project's API in its own process; its base URL once it answers."""
    port = free_port()
    server = subprocess.Popen(  # noqa: S603 - our own command line
        [sys.executable, "-m", PACKAGE, "api", "--profile=test", f"--port={port}"],
        env=environment(PRODUCTION_LIKE),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx2.get(f"{url}/healthz", timeout=1)
                break
            except httpx2.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the API did not start; try `make api`") from None
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def run(requests: int, progress: Callable[[str], None]) -> dict[str, Any]:
    """Latency percentiles of each side, and what the API adds at each."""
    app = create_app(project_settings(PRODUCTION_LIKE))
    try:
        direct = percentiles(in_processes(direct_client, requests))
        progress("api  direct " + "  ".join(f"{k} {v:6.2f} ms" for k, v in direct.items()))
        with api_server() as url:
            api = percentiles(in_processes(partial(api_client, url), requests))
        progress("api  api    " + "  ".join(f"{k} {v:6.2f} ms" for k, v in api.items()))
    finally:
        app.control.purge()
    return {
        "clients": CLIENTS,
        "requests": requests,
        "direct_ms": direct,
        "api_ms": api,
        "api_adds_ms": {key: api[key] - direct[key] for key in api},
        "cpus": os.cpu_count(),
    }
