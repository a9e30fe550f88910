"""The KEDA manifest is written from the settings, and the committed one is that manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from {{ cookiecutter.package_name }} import keda
from {{ cookiecutter.package_name }}.cli import (
    app,
)
from {{ cookiecutter.package_name }}.config import (
    ConfigError,
)
from {{ cookiecutter.package_name }}.config.settings import (
    ENV_PREFIX,
)
from {{ cookiecutter.package_name }}.queue_depth import (
    redis_lists,
)
from {{ cookiecutter.package_name }}.queues import (
    QUEUES,
)

PROJECT = Path(__file__).resolve().parents[2]
COMMITTED = PROJECT / keda.KEDA_FILE
SLUG = "{{ cookiecutter.project_slug }}"
runner = CliRunner()


def production_profile(monkeypatch: pytest.MonkeyPatch, values: dict[str, Any]) -> None:
    """Make config/production.toml hold ``values``."""
    monkeypatch.setattr(keda, "read_profile", lambda profile: values)


def scaled_objects(text: str) -> dict[str, list[str]]:
    """Each ScaledObject's lines, stripped, by queue."""
    found = {}
    for document in text.split("---\n"):
        lines = [line.strip() for line in document.splitlines()]
        if "kind: ScaledObject" in lines:
            name = lines[lines.index("metadata:") + 1].removeprefix(f"name: {SLUG}-worker-")
            found[name] = lines
    return found


def test_the_committed_manifest_is_the_one_the_settings_give() -> None:
    result = runner.invoke(app, ["kubernetes", "--check", "--file", str(COMMITTED)])
    assert result.exit_code == 0, result.output
    assert set(scaled_objects(COMMITTED.read_text())) == set(QUEUES)


def test_each_queue_scales_with_its_own_settings_on_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    production_profile(
        monkeypatch,
        {
            "broker": {"url": "redis://redis:6379/2"},
            "worker": {
                "cpu": {"keda": {"min_replicas": 0, "max_replicas": 20, "queue_length": 7}},
                "keda": {"cooldown_period": 60, "polling_interval": 5},
            },
        },
    )
    objects = scaled_objects(keda.manifest(*keda.production_settings()))
    cpu, default = objects["cpu"], objects["default"]
    for line in ["minReplicaCount: 0", "maxReplicaCount: 20", 'target: "7"', 'listLength: "7"']:
        assert line in cpu
    for line in ["cooldownPeriod: 300", "stabilizationWindowSeconds: 300", "pollingInterval: 15"]:
        assert line in cpu
    for line in ["minReplicaCount: 1", "maxReplicaCount: 10", "cooldownPeriod: 60"]:
        assert line in default
    assert "stabilizationWindowSeconds: 60" in default
    assert "pollingInterval: 5" in default
    for queue, lines in objects.items():
        # Every list kombu keeps the queue in, priorities included, on broker.url's database.
        listed = [line.removeprefix("listName: ") for line in lines if line.startswith("listName:")]
        expected = [json.dumps(name) for name in redis_lists(queue)]
        assert listed == expected
        assert lines.count('databaseIndex: "2"') == len(expected)
        assert f"formula: {' + '.join(f'list{i}' for i in range(len(expected)))}" in lines


def test_rabbitmq_queues_scale_on_their_ready_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    rabbitmq = {"url": "amqp://rabbitmq:5672//"}
    production_profile(
        monkeypatch, {"broker": rabbitmq, "worker": {"cpu": {"keda": {"queue_length": 3}}}}
    )
    text = keda.manifest(*keda.production_settings())
    assert "key: keda-rabbitmq-host" in text
    assert "key: broker-password" not in text  # the host URL carries the credentials
    for queue, lines in scaled_objects(text).items():
        assert lines.count("- type: rabbitmq") == 1
        assert f"queueName: {queue}" in lines
        assert ('value: "3"' if queue == "cpu" else 'value: "4"') in lines


def test_the_environment_does_not_change_the_manifest(monkeypatch: pytest.MonkeyPatch) -> None:
    before = keda.manifest(*keda.production_settings())
    monkeypatch.setenv(f"{ENV_PREFIX}WORKER__CPU__KEDA__MAX_REPLICAS", "99")
    assert keda.manifest(*keda.production_settings()) == before


def test_bad_scaling_settings_name_the_key_and_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    production_profile(
        monkeypatch, {"worker": {"cpu": {"keda": {"min_replicas": 5, "max_replicas": 2}}}}
    )
    result = runner.invoke(app, ["kubernetes", "--check"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: worker.cpu.keda (config/production.toml): min_replicas (5) must not exceed "
        "max_replicas (2); raise max_replicas or lower min_replicas\n"
    )
    production_profile(monkeypatch, {"broker": {"url": "filesystem://localhost/"}})
    with pytest.raises(ConfigError, match=r"broker.url \(config/production.toml\): KEDA"):
        keda.production_settings()


def test_check_shows_the_drift_and_writing_ends_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = runner.invoke(app, ["kubernetes"])  # the working directory is not the project
    assert elsewhere.exit_code == 2
    assert elsewhere.stderr.startswith("error: deploy/kubernetes/base does not exist; run `")
    manifest = tmp_path / "keda.yaml"
    missing = runner.invoke(app, ["kubernetes", "--check", "--file", str(manifest)])
    assert missing.exit_code == 1
    assert f"error: {manifest} does not exist" in missing.stderr
    manifest.write_text(COMMITTED.read_text())
    production_profile(monkeypatch, {"worker": {"cpu": {"keda": {"max_replicas": 20}}}})
    drifted = runner.invoke(app, ["kubernetes", "--check", "--file", str(manifest)])
    assert drifted.exit_code == 1
    assert "-  maxReplicaCount: 10\n+  maxReplicaCount: 20\n" in drifted.stderr
    assert f"error: {manifest} differs from the settings; run `uv run {SLUG} kubernetes`" in (
        drifted.stderr
    )
    written = runner.invoke(app, ["kubernetes", "--file", str(manifest)])
    assert written.exit_code == 0, written.output
    assert runner.invoke(app, ["kubernetes", "--check", "--file", str(manifest)]).exit_code == 0
    assert manifest.read_text() != COMMITTED.read_text()
