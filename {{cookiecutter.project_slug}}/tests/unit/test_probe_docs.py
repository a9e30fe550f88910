"""The README's Kubernetes probe example is the shipped worker's: a copied probe that
misses ``--node`` restart-loops the worker (README, Worker health)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

PROJECT = Path(__file__).resolve().parents[2]
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")


def readme_probes() -> dict[str, Any]:
    """The probes of the README's Worker health YAML example."""
    text = (PROJECT / "README.md").read_text()
    section = text[text.index("## Worker health") :]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert block, "Worker health shows no YAML example"
    probes: dict[str, Any] = yaml.safe_load(block.group(1))
    return probes


def manifest_probes() -> dict[str, Any]:
    """The probes of the cpu worker's container in deploy/kubernetes."""
    manifest = PROJECT / "deploy/kubernetes/base/worker-cpu.yaml"
    (deployment,) = [
        doc for doc in yaml.safe_load_all(manifest.read_text()) if doc["kind"] == "Deployment"
    ]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {name: container[name] for name in PROBES}


def test_the_readme_probe_example_is_the_shipped_workers() -> None:
    assert readme_probes() == manifest_probes()
