"""Citing evidence on an engagement (services/evidence.py), on SQLite and PostgreSQL: a caller
attaches only what it may already read there, a refusal attaches nothing, and concurrent
citations of the same file never collide."""

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Customer, Engagement, Evidence, EvidenceBlob, EvidenceLink, new_id
from services.callers import Caller
from services.evidence import EvidenceNotLinkable, check_citable, link_evidence
from tests.conftest import database_sessions

ADMIN = Caller("admin", "admin")
CONCURRENT = 50


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def sessions(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sessionmaker[Session]]:
    with database_sessions(request.param, tmp_path_factory.mktemp(request.param)) as sessions:
        yield sessions


@dataclass
class World:
    """Two engagements with a principal each, and an integration caller on the first."""

    sessions: sessionmaker[Session]
    ours: str
    theirs: str
    alice: Caller  # a principal on ours
    bob: Caller  # a principal on theirs
    robot: Caller  # ours' integration token

    def upload(self, by: Caller, attached_to: str | None = None) -> str:
        with self.sessions.begin() as session:
            sha256 = new_id("sha").ljust(64, "0")
            session.add(EvidenceBlob(sha256=sha256, size=1, content=b"x"))
            session.flush()
            evidence = Evidence(
                id=new_id("evd"),
                sha256=sha256,
                size=1,
                filename="proof.pdf",
                content_type="application/pdf",
                uploaded_by=by.actor,
            )
            session.add(evidence)
            session.flush()
            if attached_to is not None:
                session.add(EvidenceLink(evidence_id=evidence.id, engagement_id=attached_to))
            return evidence.id

    def cite(self, caller: Caller, evidence_ids: list[str], engagement_id: str) -> None:
        with self.sessions() as session:
            link_evidence(session, evidence_ids, engagement_id, caller)
            session.commit()

    def attached(self, evidence_id: str) -> list[str]:
        with self.sessions() as session:
            query = select(EvidenceLink.engagement_id).where(
                EvidenceLink.evidence_id == evidence_id
            )
            return sorted(session.scalars(query))


@pytest.fixture
def world(sessions: sessionmaker[Session]) -> World:
    with sessions.begin() as session:
        customer = Customer(id=new_id("cus"), name="Acme", currency="USD")
        session.add(customer)
        session.flush()
        ids = {}
        for side in ("ours", "theirs"):
            ids[side] = new_id("eng")
            session.add(
                Engagement(
                    id=ids[side],
                    customer_id=customer.id,
                    name=side,
                    currency="USD",
                    approval={"roles": {"client_ap": [f"prn_{side}"]}},
                )
            )
    return World(
        sessions,
        ids["ours"],
        ids["theirs"],
        alice=Caller("principal", "prn_ours"),
        bob=Caller("principal", "prn_theirs"),
        robot=Caller("integration", new_id("int"), ids["ours"]),
    )


def test_the_admin_may_cite_any_evidence_on_any_engagement(world: World):
    evidence = world.upload(world.bob, attached_to=world.theirs)
    world.cite(ADMIN, [evidence], world.ours)
    assert world.attached(evidence) == sorted([world.ours, world.theirs])


@pytest.mark.parametrize("who", ["alice", "robot"])
def test_a_caller_may_cite_evidence_it_uploaded_that_is_attached_nowhere(world: World, who: str):
    caller = getattr(world, who)
    evidence = world.upload(caller)
    world.cite(caller, [evidence], world.ours)
    assert world.attached(evidence) == [world.ours]


def test_evidence_already_on_the_engagement_may_be_cited_again_by_its_callers(world: World):
    evidence = world.upload(ADMIN, attached_to=world.ours)
    world.cite(world.alice, [evidence], world.ours)
    world.cite(world.robot, [evidence, evidence], world.ours)
    assert world.attached(evidence) == [world.ours]


def test_evidence_of_another_engagement_is_refused_and_nothing_is_attached(world: World):
    own = world.upload(world.robot)
    foreign = world.upload(world.bob, attached_to=world.theirs)
    with pytest.raises(EvidenceNotLinkable) as refused:
        world.cite(world.robot, [own, foreign], world.ours)
    assert (refused.value.refused, refused.value.unknown) == ((foreign,), ())
    assert world.attached(foreign) == [world.theirs]
    assert world.attached(own) == []


def test_someone_elses_unattached_upload_is_refused(world: World):
    evidence = world.upload(world.bob)
    with pytest.raises(EvidenceNotLinkable) as refused:
        world.cite(world.alice, [evidence], world.ours)
    assert refused.value.refused == (evidence,)
    assert world.attached(evidence) == []


def test_an_own_upload_already_attached_elsewhere_is_refused(world: World):
    evidence = world.upload(world.alice, attached_to=world.theirs)
    with pytest.raises(EvidenceNotLinkable):
        world.cite(world.alice, [evidence], world.ours)
    assert world.attached(evidence) == [world.theirs]


def test_unknown_evidence_is_refused_and_named_even_for_the_admin(world: World):
    evidence = world.upload(ADMIN)
    with pytest.raises(EvidenceNotLinkable) as refused:
        world.cite(ADMIN, [evidence, "evd_nope"], world.ours)
    assert (refused.value.unknown, refused.value.refused) == (("evd_nope",), ())
    assert "unknown evidence 'evd_nope'" in str(refused.value)
    assert world.attached(evidence) == []


def test_checking_that_evidence_is_citable_attaches_nothing(world: World):
    own, foreign = world.upload(world.alice), world.upload(world.bob)
    with world.sessions() as session:
        check_citable(session, [own], world.ours, world.alice)
        with pytest.raises(EvidenceNotLinkable):
            check_citable(session, [own, foreign], world.ours, world.alice)
        session.commit()
    assert world.attached(own) == []


def test_fifty_concurrent_citations_of_the_same_evidence_all_succeed_with_one_link(world: World):
    evidence = world.upload(world.robot)
    start = threading.Barrier(CONCURRENT)

    def cite(_: int) -> None:
        start.wait()  # before touching the pool, so all fifty race for the same link
        world.cite(world.robot, [evidence], world.ours)

    with ThreadPoolExecutor(CONCURRENT) as pool:
        list(pool.map(cite, range(CONCURRENT)))  # re-raises any citation's error
    assert world.attached(evidence) == [world.ours]
