"""deploy/kubernetes/base/keda.yaml, written from the settings.

KEDA takes its numbers from the manifest, never from a worker's settings, so the
manifest is written from them: ``kubernetes`` writes it, ``kubernetes --check`` (the
pre-commit hook, CI and a unit test) fails when the committed file differs. The values
are the production profile's as committed, the defaults then config/production.toml,
and never the environment (the loader refuses these keys there): whoever writes the
file writes the same one.

Written as text rather than dumped with a YAML library: the file keeps its comments,
and the Redis list names keep their escapes (``"cpu\\u0006\\u00163"``).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import ValidationError

from .config import ConfigError, Profile
from .config.loader import profile_file, read_profile
from .config.settings import BrokerSettings, KedaSettings, WorkerSettings
from .queue_depth import redis_lists
from .queues import QUEUES, queue_worker

KEDA_FILE = Path("deploy/kubernetes/base/keda.yaml")
SLUG = "{{ cookiecutter.project_slug }}"
# The Secret the README has you create; the TriggerAuthentication reads the broker's from it.
SECRET = SLUG
AUTHENTICATION = f"{SLUG}-broker"
HEADER = f"""\
# Written by `{SLUG} kubernetes` from worker.keda and worker.<queue>.keda
# (config/settings.py, then config/production.toml): change those and run it again
# rather than editing this file (`kubernetes --check` fails on any difference).
# KEDA scales each queue's worker Deployment on the messages waiting in that queue.
# The broker's address and credentials come from the Secret "{SECRET}"
# through a TriggerAuthentication: nothing secret in the triggers.
"""


def production_settings() -> tuple[BrokerSettings, WorkerSettings]:
    """broker.* and worker.* of the production profile: the defaults, then its file.

    Only these two sections: the whole profile would also need the passwords, which
    come from a Secret in the cluster, not from the project.
    """
    values = read_profile(Profile.PRODUCTION)
    try:
        broker = BrokerSettings.model_validate(values.get("broker", {}))
        worker = WorkerSettings.model_validate(values.get("worker", {}))
    except ValidationError as error:
        raise ConfigError(_describe(error)) from None
    if not (broker.is_redis or broker.is_amqp):
        raise ConfigError(
            f"broker.url ({profile_file(Profile.PRODUCTION)}): KEDA here scales on Redis or "
            f"RabbitMQ queues, not {broker.scheme}://; set a redis:// or amqp:// URL"
        )
    return broker, worker


def _describe(error: ValidationError) -> str:
    """One line per bad key of the production profile's file."""
    section = "broker" if error.title == BrokerSettings.__name__ else "worker"
    where = profile_file(Profile.PRODUCTION)
    lines = []
    for item in error.errors():
        key = ".".join([section, *map(str, item["loc"])])
        lines.append(f"{key} ({where}): {item['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)


def manifest(broker: BrokerSettings, worker: WorkerSettings) -> str:
    """The text of keda.yaml: the broker's TriggerAuthentication, a ScaledObject per queue."""
    documents = [HEADER + trigger_authentication(broker)]
    for queue in QUEUES:
        documents.append(scaled_object(queue, queue_worker(worker, queue)[0].keda, broker))
    return "---\n".join(documents)


def trigger_authentication(broker: BrokerSettings) -> str:
    """Where KEDA finds the broker: keys of the Secret, never values."""
    if broker.is_redis:
        refs = [("address", "keda-redis-address"), ("password", "broker-password")]
    else:
        refs = [("host", "keda-rabbitmq-host")]
    lines = [
        "apiVersion: keda.sh/v1alpha1",
        "kind: TriggerAuthentication",
        "metadata:",
        f"  name: {AUTHENTICATION}",
        "spec:",
        "  secretTargetRef:",
    ]
    for parameter, key in refs:
        lines += [f"    - parameter: {parameter}", f"      name: {SECRET}", f"      key: {key}"]
    return "\n".join(lines) + "\n"


def scaled_object(queue: str, keda: KedaSettings, broker: BrokerSettings) -> str:
    """The ScaledObject that sizes ``queue``'s worker Deployment from its backlog."""
    name = f"{SLUG}-worker-{queue}"
    lines = [
        "apiVersion: keda.sh/v1alpha1",
        "kind: ScaledObject",
        "metadata:",
        f"  name: {name}",
        "spec:",
        "  scaleTargetRef:",
        f"    name: {name}",
        f"  minReplicaCount: {keda.min_replicas}",
        f"  maxReplicaCount: {keda.max_replicas}",
        f"  pollingInterval: {keda.polling_interval}",
        "  # Scale-in stops a pod with SIGTERM: its running tasks finish within the grace",
        "  # period (README, Kubernetes with KEDA).",
        f"  cooldownPeriod: {keda.cooldown_period}",
        "  advanced:",
        "    horizontalPodAutoscalerConfig:",
        "      behavior:",
        "        scaleDown:",
        f"          stabilizationWindowSeconds: {keda.cooldown_period}",
    ]
    target = json.dumps(str(keda.queue_length))
    if broker.is_redis:
        lists = redis_lists(queue)
        names = [f"list{index}" for index in range(len(lists))]
        database = urlsplit(broker.url).path.strip("/") or "0"
        lines += [
            "    # kombu keeps a queue in one Redis list per priority step (queue_depth.py):",
            "    # a trigger each, and their sum against the target, as the autoscaler counts.",
            "    scalingModifiers:",
            f"      formula: {' + '.join(names)}",
            f"      target: {target}",
            "  triggers:",
        ]
        for trigger, listed in zip(names, lists, strict=True):
            lines += [
                "    - type: redis",
                f"      name: {trigger}",
                "      metadata:",
                f"        listName: {json.dumps(listed)}",
                f"        listLength: {target}",
                f'        databaseIndex: "{database}"',
                "      authenticationRef:",
                f"        name: {AUTHENTICATION}",
            ]
    else:
        lines += [
            "  triggers:",
            "    # Ready messages only: those a worker holds unacknowledged are running.",
            "    - type: rabbitmq",
            "      metadata:",
            "        protocol: amqp",
            f"        queueName: {queue}",
            "        mode: QueueLength",
            f"        value: {target}",
            "      authenticationRef:",
            f"        name: {AUTHENTICATION}",
        ]
    return "\n".join(lines) + "\n"
