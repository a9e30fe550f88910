"""Enqueue latency (p50, p95, p99) of process_data on the test profile's broker.

Direct ``apply_async`` from threads{% if cookiecutter.include_api %}, then POST /tasks/process_data through the API{% endif %}.

    uv run python benchmarks/enqueue_latency.py [--requests 2000] [--concurrency 50]

Talks to 127.0.0.1 only, sends a bounded number of tasks, purges them afterwards.
A benchmark, not a test: it prints numbers and judges nothing.
"""

from __future__ import annotations

import argparse
{%- if cookiecutter.include_api %}
import asyncio
import os
import socket
import subprocess
import sys
{%- endif %}
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from statistics import quantiles
{%- if cookiecutter.include_api %}

import httpx2
{%- endif %}

from {{ cookiecutter.package_name }}.celery_app import (
    create_app,
)
from {{ cookiecutter.package_name }}.config import (
    load_settings,
)
from {{ cookiecutter.package_name }}.tasks.data import (
    ProcessDataInput,
    process_data,
)

PAYLOAD = {"value": 1, "label": "benchmark"}


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50, p95 and p99 of latencies in seconds, as milliseconds."""
    cuts = quantiles(samples, n=100)
    return {name: cuts[index] * 1000 for name, index in (("p50", 49), ("p95", 94), ("p99", 98))}


def timed(call: Callable[[], object]) -> float:
    """Seconds one call takes."""
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def measure_direct(requests: int, concurrency: int) -> list[float]:
    """Latency of ``process_data.delay`` from ``concurrency`` threads."""
    payload = ProcessDataInput.model_validate(PAYLOAD)
    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(lambda _: timed(lambda: process_data.delay(payload)), range(requests)))
{%- if cookiecutter.include_api %}


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_api(port: int) -> subprocess.Popen[bytes]:
    """The API in its own process (one uvicorn worker), ready to answer."""
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "{{ cookiecutter.package_name }}.api.app:api_from_environment",
    ]
    server = subprocess.Popen(command, env={**os.environ, "APP_ENV": "test"})  # noqa: S603
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return server
        except httpx2.TransportError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the API did not start within 30 s")


async def measure_api(url: str, requests: int, concurrency: int) -> list[float]:
    """Latency of POST /tasks/process_data from ``concurrency`` concurrent clients."""
    limits = httpx2.Limits(max_connections=concurrency)
    async with httpx2.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        gate = asyncio.Semaphore(concurrency)

        async def one() -> float:
            async with gate:
                start = time.perf_counter()
                response = await client.post("/tasks/process_data", json=PAYLOAD)
                response.raise_for_status()
                return time.perf_counter() - start

        return list(await asyncio.gather(*(one() for _ in range(requests))))
{%- endif %}


def report(name: str, samples: list[float]) -> None:
    """Print one line of percentiles."""
    numbers = percentiles(samples)
    print(f"{name:<8} " + "  ".join(f"{key} {value:7.2f} ms" for key, value in numbers.items()))


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    settings = load_settings("test", env_file=None)
    app = create_app(settings)
    print(f"broker {settings.broker.scheme}, {args.requests} tasks, {args.concurrency} concurrent")
    try:
        measure_direct(min(args.requests, 200), args.concurrency)  # warm-up
        direct = measure_direct(args.requests, args.concurrency)
        report("direct", direct)
{%- if cookiecutter.include_api %}
        port = free_port()
        server = start_api(port)
        try:
            url = f"http://127.0.0.1:{port}"
            asyncio.run(measure_api(url, min(args.requests, 200), args.concurrency))  # warm-up
            api = asyncio.run(measure_api(url, args.requests, args.concurrency))
            report("api", api)
        finally:
            server.terminate()
            server.wait(timeout=30)
        api_p95, direct_p95 = percentiles(api)["p95"], percentiles(direct)["p95"]
        print(
            f"api adds {api_p95 - direct_p95:.2f} ms at p95 "
            f"(ratio {api_p95 / direct_p95:.2f}); target: at most 2 ms"
        )
{%- endif %}
    finally:
        app.control.purge()


if __name__ == "__main__":
    main()
