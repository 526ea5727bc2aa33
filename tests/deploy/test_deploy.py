"""The compose file, Dockerfile, .env.example and Kubernetes manifests, checked against the settings.

No Docker engine runs here, so these parse the files and check what a run would rely on.
"""

from __future__ import annotations

import re

import yaml

from streams.settings import Settings, env_example
from tests.conftest import ROOT

SETTING_NAMES = {f"SPENDWATCH_{name.upper()}" for name in Settings.model_fields}
CONTRACT_TOPICS = {"ai.token-usage", "ai.gpu-metrics", "ai.training-runs", "ai.outcomes", "spendwatch.alerts",
                   "spendwatch.dead-letter"}


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_kraft_kafka_and_creates_every_topic_with_the_workers_partition_count():
    services = compose()["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    init = "\n".join(services["kafka-init"]["command"])
    created = set(re.search(r"for topic in ([^;]+);", init).group(1).split())
    assert created == CONTRACT_TOPICS
    partitions = int(re.search(r"--partitions (\d+)", init).group(1))
    workers = [s for name, s in services.items() if name.startswith("worker")]
    assert len(workers) == 2
    for worker in workers:
        assert int(worker["environment"]["SPENDWATCH_PARTITIONS"]) == partitions
        assert worker["environment"]["SPENDWATCH_KAFKA_BROKERS"] == "kafka://kafka:9092"


def test_compose_workers_are_built_from_the_dockerfile_with_valid_settings_and_their_own_ports():
    services = compose()["services"]
    host_ports = []
    for name in ("worker-1", "worker-2"):
        worker = services[name]
        assert worker["build"]["dockerfile"] == "deploy/Dockerfile"
        assert set(worker["environment"]) <= SETTING_NAMES
        port = worker["environment"]["SPENDWATCH_HTTP_PORT"]
        [mapping] = worker["ports"]
        host, host_port, container_port = mapping.split(":")
        assert host == "127.0.0.1" and container_port == port
        assert worker["environment"]["SPENDWATCH_PUBLIC_URL"] == f"http://{name}:{port}"
        host_ports.append(host_port)
    assert len(set(host_ports)) == 2
    simulator = services["simulator"]
    assert simulator["profiles"] == ["simulator"] and simulator["command"] == ["simulate"]


def test_dockerfile_is_slim_non_root_and_checks_health():
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    bases = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("FROM")]
    assert all(base.startswith("python:3.11-slim") for base in bases)
    assert re.search(r"^USER spendwatch$", dockerfile, re.M)
    assert "HEALTHCHECK" in dockerfile and "/healthz" in dockerfile
    for name in re.findall(r"(SPENDWATCH_[A-Z_]+)=", dockerfile):
        assert name in SETTING_NAMES


def test_env_example_lists_every_setting_with_its_default():
    text = (ROOT / "deploy" / ".env.example").read_text()
    assert text == env_example()
    listed = set(re.findall(r"^(?:# )?(SPENDWATCH_[A-Z_]+)=", text, re.M))
    assert listed == SETTING_NAMES


def test_kubernetes_manifests_reference_valid_settings_secrets_and_probes():
    config = yaml.safe_load((ROOT / "deploy" / "k8s" / "configmap.yaml").read_text())
    deployment, service = yaml.safe_load_all((ROOT / "deploy" / "k8s" / "deployment.yaml").read_text())
    assert set(config["data"]) <= SETTING_NAMES
    assert deployment["kind"] == "Deployment" and deployment["spec"]["replicas"] >= 2
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"][0]["configMapRef"]["name"] == config["metadata"]["name"]
    secret_refs = [e for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})]
    assert {e["name"] for e in secret_refs} >= {"SPENDWATCH_PAGERDUTY_ROUTING_KEY", "SPENDWATCH_KAFKA_PASSWORD"}
    assert all(e["name"] in SETTING_NAMES for e in container["env"] if e["name"].startswith("SPENDWATCH_"))
    port = int(config["data"]["SPENDWATCH_HTTP_PORT"])
    assert container["ports"][0]["containerPort"] == port
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert service["kind"] == "Service" and service["spec"]["ports"][0]["port"] == port
    Settings(**{k.removeprefix("SPENDWATCH_").lower(): v for k, v in config["data"].items()})  # values validate


def test_readme_lists_every_setting():
    readme = (ROOT / "README.md").read_text()
    assert [name for name in sorted(SETTING_NAMES) if name not in readme] == []


def test_grafana_dashboard_plots_only_metrics_the_worker_exports():
    import json

    from streams.worker.metrics import Metrics

    dashboard = json.loads((ROOT / "deploy" / "grafana" / "spendwatch.json").read_text())
    metrics = Metrics()
    metrics.events.labels("t", "accepted").inc()  # labelled families print samples once used
    exported = {line.split("{")[0].split(" ")[0] for line in metrics.exposition().decode().splitlines()
                if line and not line.startswith("#")}
    exported |= {line.split()[2] for line in metrics.exposition().decode().splitlines() if line.startswith("# TYPE")}
    plotted = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"spendwatch_[a-z_]+", target["expr"])}
    assert len(plotted) >= 10
    missing = {name for name in plotted if name not in exported and name.removesuffix("_total") not in exported}
    assert not missing, f"the dashboard plots metrics the worker does not export: {missing}"


def test_compose_keeps_kafka_data_limits_every_container_and_needs_the_http_token():
    spec = compose()
    services = spec["services"]
    kafka = services["kafka"]
    [mount] = kafka["volumes"]
    volume, path = mount.split(":")[:2]
    assert volume in spec["volumes"] and path == kafka["environment"]["KAFKA_LOG_DIRS"]
    for name in ("kafka", "worker-1", "worker-2"):
        limits = services[name]["deploy"]["resources"]["limits"]
        assert limits["cpus"] and limits["memory"]
    for name in ("worker-1", "worker-2", "simulator"):
        service = services[name]
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in service["security_opt"]
    token = services["worker-1"]["environment"]["SPENDWATCH_HTTP_TOKEN"]
    assert token.startswith("${SPENDWATCH_HTTP_TOKEN:?")  # compose refuses to start without one


def test_kubernetes_pod_meets_the_restricted_pod_security_profile():
    deployment, _ = yaml.safe_load_all((ROOT / "deploy" / "k8s" / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    [container] = pod["containers"]
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False and context["readOnlyRootFilesystem"] is True
    assert context["capabilities"]["drop"] == ["ALL"] and "add" not in context["capabilities"]
    assert context["seccompProfile"]["type"] in ("RuntimeDefault", "Localhost")
    writable = {mount["mountPath"] for mount in container["volumeMounts"] if not mount.get("readOnly")}
    config = yaml.safe_load((ROOT / "deploy" / "k8s" / "configmap.yaml").read_text())
    assert config["data"]["SPENDWATCH_DATA_DIR"] in writable and "/tmp" in writable
    token = next(e for e in container["env"] if e["name"] == "SPENDWATCH_HTTP_TOKEN")
    assert not token["valueFrom"]["secretKeyRef"].get("optional", False)
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    from streams.worker.web import OPEN

    assert annotations["prometheus.io/path"] in OPEN  # scraped without a token: it carries none


def test_kubernetes_rbac_lets_the_worker_get_list_and_patch_jobs_in_its_namespace_and_nothing_more():
    """Issue "Poison": the executor's service account can suspend Jobs where it runs; no other verb, resource,
    group or namespace; and its token reaches the pod only where actions are turned on."""
    account, role, binding = yaml.safe_load_all((ROOT / "deploy" / "k8s" / "rbac.yaml").read_text())
    assert account["kind"] == "ServiceAccount" and account["automountServiceAccountToken"] is False
    assert role["kind"] == "Role" and "namespace" not in role["metadata"]  # namespaced: where it is applied
    assert role["rules"] == [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "patch"]}]
    assert binding["kind"] == "RoleBinding" and "namespace" not in binding["metadata"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"]}]
    deployment, _ = yaml.safe_load_all((ROOT / "deploy" / "k8s" / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    config = yaml.safe_load((ROOT / "deploy" / "k8s" / "configmap.yaml").read_text())
    assert "SPENDWATCH_ACTIONS" not in config["data"] and pod["automountServiceAccountToken"] is False
    settings = Settings(**{k.removeprefix("SPENDWATCH_").lower(): v for k, v in config["data"].items()})
    assert settings.kubernetes_api_url.startswith("https://")
    assert "automountServiceAccountToken: true" in (ROOT / "deploy" / "k8s" / "rbac.yaml").read_text()  # how to


def test_the_image_binds_every_address_so_each_shipped_worker_brings_a_token_and_a_bare_one_refuses():
    """Issue "Poison": the image binds 0.0.0.0, where a worker with no token refuses to start."""
    import pytest

    from streams.errors import SettingsError
    from streams.settings import require_guarded_http

    def settings_of(env: dict[str, str]) -> Settings:
        return Settings(**{k.removeprefix("SPENDWATCH_").lower(): v for k, v in env.items()})

    lines = [line for line in (ROOT / "deploy" / "Dockerfile").read_text().splitlines() if not line.startswith("#")]
    image = dict(re.findall(r"(SPENDWATCH_[A-Z_]+)=(\S+)", "\n".join(lines)))
    assert image["SPENDWATCH_HTTP_HOST"] == "0.0.0.0" and "SPENDWATCH_HTTP_ALLOW_OPEN" not in image
    with pytest.raises(SettingsError, match="SPENDWATCH_HTTP_TOKEN"):
        require_guarded_http(settings_of({"SPENDWATCH_HTTP_HOST": image["SPENDWATCH_HTTP_HOST"]}))
    for name in ("worker-1", "worker-2"):
        env = dict(compose()["services"][name]["environment"])
        assert env["SPENDWATCH_HTTP_TOKEN"].startswith("${SPENDWATCH_HTTP_TOKEN:?")
        assert "SPENDWATCH_HTTP_ALLOW_OPEN" not in env
        require_guarded_http(settings_of({**env, "SPENDWATCH_HTTP_TOKEN": "what-compose-substitutes"}))
    config = yaml.safe_load((ROOT / "deploy" / "k8s" / "configmap.yaml").read_text())["data"]
    deployment, *_ = yaml.safe_load_all((ROOT / "deploy" / "k8s" / "deployment.yaml").read_text())
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    token = next(e for e in container["env"] if e["name"] == "SPENDWATCH_HTTP_TOKEN")
    assert not token["valueFrom"]["secretKeyRef"].get("optional", False)
    assert "SPENDWATCH_HTTP_ALLOW_OPEN" not in config
    require_guarded_http(settings_of({**config, "SPENDWATCH_HTTP_TOKEN": "from-the-secret"}))
