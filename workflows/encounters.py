"""Billing a batch of encounters: one invoice line per encounter, posted in chunks.

Decisions only: the encounters were checked and priced when they were accepted
(``services/encounters.py``), so billing has nothing left to refuse; each chunk is one
idempotent transaction (``activities/encounters.py``).
"""

from dataclasses import dataclass

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.times import iso
    from workflows.activity_calls import activity_caller

_activity = activity_caller()
# Lines per activity call: one transaction each, well inside the attempt time-out.
CHUNK_SIZE = 500


@dataclass
class BillEncountersInput:
    engagement_id: str
    batch_id: str
    chunk_size: int = CHUNK_SIZE


@dataclass
class BillChunkRequest:
    """The ``chunk``-th run of ``limit`` encounters of the batch, in row order."""

    batch_id: str
    chunk: int
    limit: int
    at: str


@dataclass
class BilledChunk:
    posted: int  # the chunk's encounters: billed now, or by an earlier attempt
    posted_minor: int
    remaining: int  # encounters of the batch after this chunk


@dataclass
class BilledBatch:
    batch_id: str
    posted: int
    posted_minor: int


def bill_workflow_id(engagement_id: str, batch_id: str) -> str:
    return f"encounters:{engagement_id}:{batch_id}"


@workflow.defn
class BillEncounters:
    """Post the batch's encounter lines. Id ``encounters:<engagement>:<batch>``; started again
    with the same id it bills only what is left."""

    @workflow.run
    async def run(self, inp: BillEncountersInput) -> BilledBatch:
        return await bill_in_chunks(inp.batch_id, inp.chunk_size)


async def bill_in_chunks(batch_id: str, chunk_size: int) -> BilledBatch:
    """The batch's chunks, one activity each, until none is left: what ``BillEncounters`` does,
    and what an encounter sign-off does once approved (``workflows/encounter_sign_off.py``)."""
    posted = posted_minor = index = 0
    while True:
        request = BillChunkRequest(batch_id, index, chunk_size, iso(workflow.now()))
        chunk: BilledChunk = await _activity(
            "bill_encounter_chunk",
            request,
            BilledChunk,
            f"bill encounters {index * chunk_size + 1}-{(index + 1) * chunk_size} "
            f"of batch {batch_id}",
        )
        posted, posted_minor = posted + chunk.posted, posted_minor + chunk.posted_minor
        if chunk.remaining == 0 or chunk.posted == 0:
            return BilledBatch(batch_id, posted, posted_minor)
        index += 1
