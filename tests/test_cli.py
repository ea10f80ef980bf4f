"""The command line: ``tollgate dev --demo`` brings the whole stack up and Ctrl-C stops all of
it; ``tollgate reconcile`` runs the reconciler's pass by hand."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from services.callers import Caller
from services.triggers import accept_trigger
from tests.conftest_stack import Example


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def approval_emails(folder: Path, count: int) -> list[str]:
    """The approval requests the local mail sink caught, once ``count`` have arrived."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        mails = [p.read_text() for p in sorted(folder.glob("*.eml"))]
        requests = [m for m in mails if "/approve/" in m]
        if len(requests) >= count:
            return requests
        time.sleep(0.2)
    raise AssertionError(f"{count} approval emails never arrived in {folder}")


def test_dev_with_demo_serves_a_run_awaiting_approval_and_stops_cleanly_on_ctrl_c(tmp_path: Path):
    api, temporal, ui, smtp = free_port(), free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "TOLLGATE_API_PORT": str(api),
        "TOLLGATE_DEV_TEMPORAL_PORT": str(temporal),
        "TOLLGATE_DEV_UI_PORT": str(ui),
        "TOLLGATE_SMTP_PORT": str(smtp),
    }
    env.pop("TOLLGATE_ADMIN_TOKEN", None)
    tollgate = Path(sys.executable).with_name("tollgate")
    proc = subprocess.Popen(
        [str(tollgate), "dev", "--demo"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while not any("Demo loaded" in line for line in output):
            assert time.monotonic() < deadline, "".join(output)
            line = proc.stdout.readline()  # type: ignore[union-attr]
            assert line or proc.poll() is None, "".join(output)
            output.append(line)
        while not any("curl -s http" in line for line in output):
            output.append(proc.stdout.readline())  # type: ignore[union-attr]
        text = "".join(output)
        token = (tmp_path / "data" / "admin-token").read_text().strip()
        assert f"Admin token  {token}" in text
        assert f"http://127.0.0.1:{ui}" in text

        health = httpx.get(f"http://127.0.0.1:{api}/healthz", timeout=10)
        assert health.json() == {"status": "ok", "database": "ok", "temporal": "ok"}
        run_id = text.split("/workflows/")[1].split()[0]
        run = httpx.get(
            f"http://127.0.0.1:{api}/v1/runs/{run_id}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).json()
        assert run["stage"] == "awaiting_approval"
        assert httpx.get(f"http://127.0.0.1:{ui}/", timeout=10).status_code == 200
        assert (tmp_path / "data" / "temporal.db").exists()
        assert "data/mail/*.eml" in text
        mails = approval_emails(tmp_path / "data" / "mail", count=2)  # lead and client
        assert all("/approve/" in mail for mail in mails)
        assert (tmp_path / "data" / "tollgate.db").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, "".join(output) + rest
    assert "Stopped." in rest
    with socket.socket() as s:  # the Temporal dev server is gone too
        assert s.connect_ex(("127.0.0.1", temporal)) != 0


async def test_reconcile_by_hand_starts_a_recorded_trigger_and_says_so(example: Example):
    """``tollgate reconcile``: what an operator runs when runs look stuck."""
    stack = example.stack
    with stack.sessions() as session:
        trigger = {"source": "test", "completion_percent": "100", "kpis": {}, "evidence_ids": []}
        run_id = accept_trigger(
            session, Caller("admin", "admin"), example.milestone("phase-1"), "by-hand", trigger
        ).run.run_id
        database_url = session.get_bind().url.render_as_string(hide_password=False)
    env = {
        **os.environ,
        "TOLLGATE_DATABASE_URL": database_url,
        "TOLLGATE_TEMPORAL_ADDRESS": stack.temporal.service_client.config.target_host,
        "TOLLGATE_TASK_QUEUE": stack.task_queue,
    }
    tollgate = Path(sys.executable).with_name("tollgate")

    done = subprocess.run(
        [str(tollgate), "reconcile", "--grace", "0"], env=env, capture_output=True, text=True
    )

    assert done.returncode == 0, done.stderr
    started = done.stdout.split("whose workflow")[0]  # other tests' leftovers may start too
    assert "run(s) recorded but never started" in started
    assert f"  {run_id}" in started
    assert (await example.wait_for_stage(run_id, "awaiting_approval"))["stage"]
