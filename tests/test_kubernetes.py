"""deploy/kubernetes, the kustomize base: every manifest validated by kubernetes-validate against
the Kubernetes schemas it ships (no cluster, no network), and its wiring checked."""

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from config import Settings
from workflows import search_attributes as sa

ROOT = Path(__file__).parent.parent
BASE = ROOT / "deploy" / "kubernetes"
KUSTOMIZATION = yaml.safe_load((BASE / "kustomization.yaml").read_text())
MANIFESTS = [BASE / name for name in KUSTOMIZATION["resources"]]
RESOURCES = {
    (doc["kind"], doc["metadata"]["name"]): doc
    for path in MANIFESTS
    for doc in yaml.safe_load_all(path.read_text())
}
CONFIG = RESOURCES["ConfigMap", "tollgate-config"]["data"]
DEPLOYMENTS = {"api": RESOURCES["Deployment", "tollgate-api"]}
DEPLOYMENTS["worker"] = RESOURCES["Deployment", "tollgate-worker"]
JOBS = [doc for (kind, _), doc in RESOURCES.items() if kind == "Job"]


def validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "kubernetes-validate"), "--strict", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def pod(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def test_every_manifest_of_the_base_is_valid_kubernetes():
    result = validate(*MANIFESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == len(RESOURCES)


def test_the_validation_catches_a_misspelt_field(tmp_path: Path):
    broken = tmp_path / "api.yaml"
    text = (BASE / "api-deployment.yaml").read_text()
    broken.write_text(text.replace("readinessProbe:", "readinesProbe:"))
    assert validate(broken).returncode != 0


def test_the_api_and_worker_run_two_replicas_from_the_image_with_their_command():
    for part, deployment in DEPLOYMENTS.items():
        assert deployment["spec"]["replicas"] >= 2
        (container,) = pod(deployment)["containers"]
        assert container["image"] == "tollgate"
        assert container["command"] == ["tollgate", part]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_every_pod_runs_as_non_root_on_a_read_only_filesystem_with_resource_requests():
    for workload in (*DEPLOYMENTS.values(), *JOBS):
        spec = pod(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])


def test_probes_point_at_the_ports_the_processes_serve():
    (api,) = pod(DEPLOYMENTS["api"])["containers"]
    assert api["ports"] == [{"name": "http", "containerPort": int(CONFIG["TOLLGATE_API_PORT"])}]
    assert api["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert api["livenessProbe"]["tcpSocket"] == {"port": "http"}  # Temporal down: no restarts
    (worker,) = pod(DEPLOYMENTS["worker"])["containers"]
    port = int(CONFIG["TOLLGATE_WORKER_METRICS_PORT"])
    assert worker["ports"] == [{"name": "metrics", "containerPort": port}]
    for probe in ("readinessProbe", "livenessProbe"):
        assert worker[probe]["httpGet"] == {"path": "/metrics", "port": "metrics"}


def test_the_service_selects_the_api_pods():
    service = RESOURCES["Service", "tollgate-api"]
    labels = DEPLOYMENTS["api"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_settings_come_from_the_config_map_and_secrets_from_the_secret():
    fields = {f"TOLLGATE_{name.upper()}" for name in Settings.model_fields}
    assert set(CONFIG) <= fields, set(CONFIG) - fields
    assert not {"TOLLGATE_DATABASE_URL", "TOLLGATE_ADMIN_TOKEN", "TOLLGATE_LINK_SECRET"} & set(
        CONFIG
    )
    assert "TOLLGATE_SMTP_PASSWORD" not in CONFIG
    for workload in (*DEPLOYMENTS.values(), RESOURCES["Job", "tollgate-migrate"]):
        (container,) = pod(workload)["containers"]
        assert container["envFrom"] == [
            {"configMapRef": {"name": "tollgate-config"}},
            {"secretRef": {"name": "tollgate-secrets"}},
        ]


def test_a_job_migrates_the_schema_and_one_registers_every_search_attribute():
    (migrate,) = pod(RESOURCES["Job", "tollgate-migrate"])["containers"]
    assert migrate["command"] == ["tollgate", "migrate"]
    (register,) = pod(RESOURCES["Job", "tollgate-temporal-search-attributes"])["containers"]
    assert register["image"].startswith("temporalio/admin-tools:")
    command = " ".join(register["command"])
    assert command.startswith("temporal operator search-attribute create")
    for key in sa.ALL:
        assert f"--name {key.name} --type Keyword" in command
    assert "|| true" not in command


def test_temporal_comes_from_its_helm_chart_with_a_30_day_namespace():
    values = yaml.safe_load((BASE / "temporal-values.yaml").read_text())
    namespaces = values["server"]["config"]["namespaces"]
    assert namespaces["create"] is True
    assert namespaces["namespace"] == [
        {"name": CONFIG["TOLLGATE_TEMPORAL_NAMESPACE"], "retention": "30d"}
    ]
    assert not any(kind.startswith("Stateful") for kind, _ in RESOURCES)  # no Temporal copied
