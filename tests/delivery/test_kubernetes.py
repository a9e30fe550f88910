"""The generated deploy/kubernetes: every overlay renders with kustomize, validates
against the Kubernetes schemas, and agrees with the project's settings and image.

kustomize is kubectl's (``kubectl kustomize``): PyPI's "kustomize" is an unrelated
Python reimplementation, and the real binary is not on PyPI. Without kubectl the
tests skip, saying so, except under CI=true, where they fail. KEDA's objects are
custom resources that kubernetes-validate has no schema for: they are checked field
by field here, against the settings they are written from (worker.<queue>.keda).
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import unquote, urlsplit

import kubernetes_validate
import pytest
import yaml

from ..conftest import Project

KUBERNETES_VERSION = "1.32"
KEDA_SCALED_OBJECT_SPEC = {
    "scaleTargetRef",
    "minReplicaCount",
    "maxReplicaCount",
    "pollingInterval",
    "cooldownPeriod",
    "advanced",
    "triggers",
}
KEDA_SETTINGS = {
    "min_replicas",
    "max_replicas",
    "polling_interval",
    "cooldown_period",
    "queue_length",
}
Manifest = dict[str, Any]


def unavailable(reason: str) -> NoReturn:
    """Fail under CI=true, skip elsewhere, saying why."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true requires it")
    pytest.skip(f"{reason} (CI=true makes this a failure)")


@pytest.fixture(scope="session")
def kubectl() -> str:
    """The kubectl binary, whose ``kustomize`` renders the overlays."""
    found = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if found is None:
        unavailable("no kubectl on PATH (it renders the kustomize overlays)")
    return found


def overlays(project: Project) -> list[Path]:
    """Every overlay the project ships."""
    found = sorted((project.path / "deploy/kubernetes/overlays").iterdir())
    assert found, "deploy/kubernetes/overlays is empty"
    return found


def kustomize(kubectl: str, overlay: Path) -> list[Manifest]:
    """The objects an overlay renders to."""
    result = subprocess.run(
        [kubectl, "kustomize", str(overlay)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"kubectl kustomize {overlay} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def production(project: Project, kubectl: str) -> list[Manifest]:
    """The production overlay's objects."""
    return kustomize(kubectl, project.path / "deploy/kubernetes/overlays/production")


def of_kind(objects: list[Manifest], kind: str) -> dict[str, Manifest]:
    """The objects of one kind by name."""
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def container(deployment: Manifest) -> Manifest:
    """The single container of a Deployment."""
    containers: list[Manifest] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def queues(project: Project) -> tuple[str, ...]:
    """QUEUES from the rendered queues.py, read without importing the project."""
    tree = ast.parse((project.path / "src" / project.package / "queues.py").read_text())
    constants: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                constants[name] = node.value.value
            if name == "QUEUES" and isinstance(node.value, ast.Tuple):
                return tuple(constants[e.id] for e in node.value.elts if isinstance(e, ast.Name))
    raise AssertionError("no QUEUES tuple in queues.py")


def defaults(project: Project) -> dict[str, str]:
    """Every setting at its default, as .env.example lists them (SECTION__KEY: value)."""
    prefix = project.package.upper() + "_"
    listed = re.findall(
        rf"^# {prefix}(\S+?)=(.*)$", (project.path / ".env.example").read_text(), re.MULTILINE
    )
    return dict(listed)


def settings(project: Project, objects: list[Manifest]) -> dict[str, str]:
    """Effective settings: the defaults, then the ConfigMap's."""
    prefix = project.package.upper() + "_"
    values = defaults(project)
    (config_map,) = of_kind(objects, "ConfigMap").values()
    for key, value in config_map["data"].items():
        if key.startswith(prefix):
            values[key.removeprefix(prefix)] = value
    return values


def secret_keys(project: Project) -> dict[str, str]:
    """The keys and example values of the Secret the README tells the user to create."""
    readme = (project.path / "README.md").read_text()
    command = re.search(r"kubectl create secret generic \S+ \\\n(?:.*\\\n)*.*\n", readme)
    assert command, "the README shows no `kubectl create secret generic` command"
    return dict(re.findall(r"--from-literal=([\w-]+)=(\S+)", command.group(0)))


def test_every_overlay_validates_against_the_kubernetes_schemas(
    rendered: Project, kubectl: str
) -> None:
    for overlay in overlays(rendered):
        objects = kustomize(kubectl, overlay)
        assert objects, f"{overlay} renders nothing"
        for obj in objects:
            if obj["apiVersion"].startswith("keda.sh/"):
                continue  # custom resources: test_keda_* check them
            try:
                kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{overlay.name}: {obj['kind']} {obj['metadata']['name']}: {error}")


def test_one_worker_per_queue_beat_exporter_and_api_when_included(
    rendered: Project, kubectl: str
) -> None:
    objects = production(rendered, kubectl)
    deployments = of_kind(objects, "Deployment")
    slug = rendered.combination.slug
    expected = {f"{slug}-worker-{q}": ["worker", "--queue", q] for q in queues(rendered)}
    expected[f"{slug}-beat"] = ["beat"]
    expected[f"{slug}-exporter"] = ["exporter"]
    if rendered.combination.include_api:
        expected[f"{slug}-api"] = ["api"]
        assert f"{slug}-api" in of_kind(objects, "Service")
    assert {name: container(d)["args"] for name, d in deployments.items()} == expected
    for deployment in deployments.values():
        assert container(deployment)["image"] == f"{slug}:0.1.0"
    budgets = of_kind(objects, "PodDisruptionBudget")
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        selector = budgets[name]["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items(), f"{name}'s PodDisruptionBudget misses it"


def test_the_queue_exporter_serves_on_its_port_for_prometheus(
    rendered: Project, kubectl: str
) -> None:
    objects = production(rendered, kubectl)
    slug = rendered.combination.slug
    port = int(settings(rendered, objects)["EXPORTER__PORT"])
    deployment = of_kind(objects, "Deployment")[f"{slug}-exporter"]
    assert deployment["spec"]["replicas"] == 1, "each replica would ask the broker again"
    exporter = container(deployment)
    assert exporter["args"] == ["exporter"]
    assert exporter["ports"] == [{"name": "metrics", "containerPort": port}]
    # Its scrape fails (500) while the broker is down, on purpose: probes that read
    # /metrics would restart it or take it out of the Service for the broker's fault.
    for probe in ("livenessProbe", "readinessProbe"):
        assert exporter[probe]["tcpSocket"] == {"port": "metrics"}, probe
    service = of_kind(objects, "Service")[f"{slug}-exporter"]
    assert service["spec"]["selector"].items() <= (
        deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    assert service["spec"]["ports"] == [{"name": "metrics", "port": port, "targetPort": "metrics"}]


def test_workers_outlive_their_tasks_and_fit_their_memory_guard(
    rendered: Project, kubectl: str
) -> None:
    objects = production(rendered, kubectl)
    values = settings(rendered, objects)
    prefix = rendered.package.upper() + "_"
    # The ConfigMap mirrors the settings' defaults: the sizes below are computed from them.
    (config_map,) = of_kind(objects, "ConfigMap").values()
    default = defaults(rendered)
    for key, value in config_map["data"].items():
        if key.startswith((f"{prefix}TASKS__", f"{prefix}WORKER__")):
            assert value == default[key.removeprefix(prefix)], f"{key} differs from its default"
    # A task may set its own limits up to any queue's, so take the longest of all.
    longest = max(float(values[k]) for k in values if re.fullmatch(r"TASKS__(\w+__)?TIME_LIMIT", k))
    needed = longest + float(values["WORKER__SOFT_SHUTDOWN_TIMEOUT"])
    for queue in queues(rendered):
        deployment = of_kind(objects, "Deployment")[f"{rendered.combination.slug}-worker-{queue}"]
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace > needed, f"{queue}: grace {grace} s <= hard limit + soft shutdown {needed}"
        section = "WORKER__" if queue == "default" else f"WORKER__{queue.upper()}__"
        guard_kib = int(values[f"{section}MAX_MEMORY_PER_CHILD"]) * int(
            values[f"{section}CONCURRENCY"]
        )
        limit = container(deployment)["resources"]["limits"]["memory"]
        assert limit.endswith("Mi"), limit
        assert int(limit[:-2]) * 1024 > guard_kib, f"{queue}: {limit} below the memory guard"


def test_pods_run_as_the_image_user_with_probes_on_the_worker_node(
    rendered: Project, kubectl: str
) -> None:
    objects = production(rendered, kubectl)
    dockerfile = (rendered.path / "Dockerfile").read_text()
    user = re.search(r"^USER (\d+):(\d+)$", dockerfile, re.M)
    data_dir = re.search(r"DATA_DIR=(\S+)", dockerfile)
    assert user
    assert data_dir
    for name, deployment in of_kind(objects, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert str(pod["securityContext"]["runAsUser"]) == user.group(1), name
        assert str(pod["securityContext"]["runAsGroup"]) == user.group(2), name
        main = container(deployment)
        assert main["securityContext"]["readOnlyRootFilesystem"] is True, name
        mounts = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts[data_dir.group(1)]], f"{name}: data_dir not writable"
        if main["args"][0] == "worker":
            queue = main["args"][2]
            for probe, flag in (("livenessProbe", "--liveness"), ("readinessProbe", "--readiness")):
                # %h: the probe expands it as the worker expands its --hostname=<queue>@%h.
                command = [rendered.combination.slug, "probe", flag, "--node", f"{queue}@%h"]
                assert main[probe]["exec"]["command"] == command, f"{name} {probe}"
                assert main[probe]["timeoutSeconds"] >= 10, "Python takes 1-4 s to start"


def test_secrets_come_from_the_documented_secret_only(rendered: Project, kubectl: str) -> None:
    objects = production(rendered, kubectl)
    documented = secret_keys(rendered)
    slug = rendered.combination.slug
    (config_map,) = of_kind(objects, "ConfigMap").values()
    assert not [k for k in config_map["data"] if k.endswith(("PASSWORD", "API_KEY"))]
    for deployment in of_kind(objects, "Deployment").values():
        for variable in container(deployment).get("env", []):
            ref = variable["valueFrom"]["secretKeyRef"]
            assert ref["name"] == slug
            assert ref["key"] in documented, f"{ref['key']} is not in the README's command"
    rendered_text = yaml.safe_dump_all(objects).lower()
    assert "change-me" not in rendered_text
    assert "change_me" not in rendered_text


def keda_settings(project: Project, queue: str) -> dict[str, int]:
    """worker.<queue>.keda (worker.keda for default) as ``kubernetes`` reads them: the
    defaults (the README's settings table: the environment may not set these, so
    .env.example does not list them), then config/production.toml."""
    section = "worker.keda." if queue == "default" else f"worker.{queue}.keda."
    rows = re.findall(
        rf"^\| `{re.escape(section)}(\w+)` \| [^|]+ \| `(\d+)` \|",
        (project.path / "README.md").read_text(),
        re.MULTILINE,
    )
    values = {key: int(value) for key, value in rows}
    production = tomllib.loads(
        (project.path / "src" / project.package / "config/production.toml").read_text()
    )
    worker = production.get("worker", {})
    values.update((worker if queue == "default" else worker.get(queue, {})).get("keda", {}))
    assert set(values) == KEDA_SETTINGS, f"{queue}: keda settings {sorted(values)}"
    return values


def redis_lists(queue: str) -> list[str]:
    """The lists kombu keeps a Redis queue in: itself, then one per priority step
    (kombu.transport.redis: priority_steps [0, 3, 6, 9], separator "\\x06\\x16"). The
    generated project's test_keda.py checks the same against kombu itself."""
    return [queue] + [f"{queue}\x06\x16{step}" for step in (3, 6, 9)]


def test_keda_scales_each_queue_on_its_own_backlog_as_the_settings_say(
    rendered: Project, kubectl: str
) -> None:
    objects = production(rendered, kubectl)
    slug = rendered.combination.slug
    broker = urlsplit(settings(rendered, objects)["BROKER__URL"])
    documented = secret_keys(rendered)
    (auth,) = of_kind(objects, "TriggerAuthentication").values()
    refs = {r["parameter"]: r for r in auth["spec"]["secretTargetRef"]}
    assert {r["name"] for r in refs.values()} == {slug}
    scaled = of_kind(objects, "ScaledObject")
    assert set(scaled) == {f"{slug}-worker-{q}" for q in queues(rendered)}
    deployments = of_kind(objects, "Deployment")
    for queue in queues(rendered):
        spec = scaled[f"{slug}-worker-{queue}"]["spec"]
        assert set(spec) <= KEDA_SCALED_OBJECT_SPEC, set(spec) - KEDA_SCALED_OBJECT_SPEC
        target = deployments[spec["scaleTargetRef"]["name"]]
        assert container(target)["args"] == ["worker", "--queue", queue]
        keda = keda_settings(rendered, queue)
        assert {
            "min_replicas": spec["minReplicaCount"],
            "max_replicas": spec["maxReplicaCount"],
            "polling_interval": spec["pollingInterval"],
            "cooldown_period": spec["cooldownPeriod"],
        } == {k: v for k, v in keda.items() if k != "queue_length"}, queue
        behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        assert behavior["scaleDown"]["stabilizationWindowSeconds"] == keda["cooldown_period"]
        length = str(keda["queue_length"])
        triggers = spec["triggers"]
        for trigger in triggers:
            assert trigger["authenticationRef"] == {"name": auth["metadata"]["name"]}
        if rendered.combination.broker == "redis":
            assert [t["type"] for t in triggers] == ["redis"] * len(triggers)
            assert [t["metadata"]["listName"] for t in triggers] == redis_lists(queue)
            for trigger in triggers:
                assert trigger["metadata"] == {
                    "listName": trigger["metadata"]["listName"],
                    "listLength": length,
                    "databaseIndex": broker.path.strip("/"),
                }
            # KEDA takes the largest of several triggers; the formula adds the lists up.
            names = [t["name"] for t in triggers]
            assert len(set(names)) == len(names)
            modifiers = spec["advanced"]["scalingModifiers"]
            assert modifiers == {"formula": " + ".join(names), "target": length}
            assert set(refs) == {"address", "password"}
            address = documented[refs["address"]["key"]]
            assert address == f"{broker.hostname}:{broker.port}"
            assert refs["password"]["key"] in documented
        else:
            (trigger,) = triggers
            assert trigger["type"] == "rabbitmq"
            assert trigger["metadata"] == {
                "protocol": "amqp",
                "queueName": queue,
                "mode": "QueueLength",
                "value": length,
            }
            assert "scalingModifiers" not in spec["advanced"]
            assert set(refs) == {"host"}
            host = urlsplit(documented[refs["host"]["key"]])
            assert (host.scheme, host.hostname, host.port) == (
                broker.scheme,
                broker.hostname,
                broker.port,
            )
            # Celery's amqp://host:5672// is the vhost "/"; KEDA's URL spells it %2F.
            assert unquote(host.path[1:]) == (broker.path[1:] or "/")
            assert host.username == rendered.package
