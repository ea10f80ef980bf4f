"""Who may sign a run, as rows beside it: what a new run's policy gives, and what migration 0013
fills in for runs that existed before, on both databases."""

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select

from db.migrate import alembic_config, upgrade
from db.models import Customer, Engagement, Run, RunSigner
from db.session import make_engine, make_session_factory
from services.run_signers import awaiting, signers
from tests.conftest import database
from workflows.contracts import ApprovalPolicy

POLICY = ApprovalPolicy(
    roles={"delivery_lead": ["prn_lead"], "client_ap": ["prn_client", "prn_client"]},
    escalation={"client_ap": ["prn_backup", "prn_lead"]},
)
SIGNERS = {
    ("prn_backup", "client_ap", "escalation"),
    ("prn_client", "client_ap", "approver"),
    ("prn_lead", "client_ap", "escalation"),
    ("prn_lead", "delivery_lead", "approver"),
}


def test_a_run_is_signed_by_each_approver_and_escalation_contact_its_policy_names_once():
    rows = signers("run-1", POLICY)
    assert {(r.principal_id, r.role, r.capacity) for r in rows} == SIGNERS
    assert {r.run_id for r in rows} == {"run-1"}
    assert len(rows) == len(SIGNERS)  # a principal named twice for a role signs once


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migration_0013_fills_in_the_signers_of_runs_that_existed_before_it(
    backend: str, tmp_path: Path
):
    with database(backend, tmp_path) as url:
        command.downgrade(alembic_config(url), "0012")
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        with sessions.begin() as session:
            session.add(Customer(id="cus_1", name="Acme", currency="USD"))
            session.flush()
            session.add(
                Engagement(id="eng_1", customer_id="cus_1", name="ERP", currency="USD", approval={})
            )
            session.flush()
            policy = {"roles": POLICY.roles, "escalation": POLICY.escalation}
            session.add_all(
                Run(id=f"run-{n}", engagement_id="eng_1", snapshot={"policy": policy}, stage=stage)
                for n, stage in enumerate(("awaiting_approval", "billed"))
            )
            session.add(Run(id="run-old", engagement_id="eng_1", snapshot={}))  # no policy
        upgrade(url)
        with sessions() as session:
            rows = session.execute(
                select(RunSigner.run_id, RunSigner.principal_id, RunSigner.role, RunSigner.capacity)
            ).all()
            waiting_for_the_backup = awaiting(session, "prn_backup")
        engine.dispose()

    assert {tuple(row) for row in rows} == {
        (run_id, *signer) for run_id in ("run-0", "run-1") for signer in SIGNERS
    }
    assert [run.id for run in waiting_for_the_backup] == ["run-0"]  # the billed run is not
