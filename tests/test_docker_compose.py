"""docker-compose.yml cannot run here (no Docker engine), so its wiring is checked instead."""

from pathlib import Path

import yaml

from config import Settings
from workflows import search_attributes as sa

ROOT = Path(__file__).parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def env_of(service: str) -> dict[str, str]:
    return dict(SERVICES[service]["environment"])


def test_the_stack_has_postgres_temporal_its_ui_the_api_and_the_worker():
    assert {"postgres", "temporal", "temporal-ui", "api", "worker", "migrate"} <= set(SERVICES)


def test_api_and_worker_are_built_from_the_one_image_and_run_the_cli():
    for service, command in [("api", "api"), ("worker", "worker"), ("migrate", "migrate")]:
        assert SERVICES[service]["build"] == "."
        assert SERVICES[service]["command"] == ["tollgate", command]
    assert 'tollgate = "cli:main"' in (ROOT / "pyproject.toml").read_text()


def test_api_and_worker_reach_postgres_and_temporal_by_service_name():
    for service in ("api", "worker", "migrate"):
        env = env_of(service)
        assert env["TOLLGATE_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert "@postgres:5432/" in env["TOLLGATE_DATABASE_URL"]
        assert env["TOLLGATE_TEMPORAL_ADDRESS"] == "temporal:7233"
        # Every variable is a real setting (a typo would silently fall back to a default).
        fields = {f"TOLLGATE_{name.upper()}" for name in Settings.model_fields}
        assert set(env) <= fields


def test_the_schema_is_migrated_before_the_api_and_worker_start():
    for service in ("api", "worker"):
        assert SERVICES[service]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )


def test_temporal_runs_on_the_same_postgres_and_registers_tollgate_search_attributes():
    assert SERVICES["temporal"]["environment"]["POSTGRES_SEEDS"] == "postgres"
    setup = " ".join(SERVICES["temporal-setup"]["command"])
    for key in sa.ALL:
        assert f"--name {key.name} --type Keyword" in setup


def test_the_api_listens_on_all_interfaces_inside_its_container():
    assert env_of("api")["TOLLGATE_API_HOST"] == "0.0.0.0"
    assert "8000:8000" in SERVICES["api"]["ports"]
    assert "8233:8080" in SERVICES["temporal-ui"]["ports"]
