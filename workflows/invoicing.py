"""Invoices become documents: finalizing one draft, all drafts (the Schedule), credit notes.

Decisions only: numbering, dating and crediting are activities (activities/documents.py and
activities/credit_notes.py), each one transaction, idempotent under retries. Each document
issued has its PDF recorded (workflows/issued_documents.py).
"""

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.times import iso
    from workflows.activity_calls import activity_caller

from workflows.issued_documents import record_document

# Business errors: retrying cannot fix them.
_activity = activity_caller(
    "InvoiceNotFound",
    "InvoiceEmpty",
    "InvoiceInconsistent",
    "InvalidDocumentNumber",
    "CreditRefused",
)
FINALIZE_DRAFTS_SCHEDULE_ID = "tollgate-finalize-drafts"
BATCHES_PATCH = "finalize-drafts-in-batches-at-local-midnight"


@dataclass(frozen=True)
class CreditLine:
    """One line of a credit note: how much of an invoice line to give back."""

    invoice_line_id: str
    amount_minor: int  # positive: how much of that line to credit
    description: str
    details: dict[str, Any] | None = None


@dataclass
class FinalizeInput:
    invoice_id: str
    issuer_prefix: str
    actor: str


@dataclass
class FinalizeRequest:
    """The activity's input: the workflow's input plus the instant that dates the invoice."""

    invoice_id: str
    issuer_prefix: str
    actor: str
    at: str


@dataclass
class FinalizedInvoice:
    invoice_id: str
    number: str
    issued_on: str
    due_on: str
    total_minor: int
    newly: bool


@dataclass
class DraftsPass:
    """Where a FinalizeDrafts run is, carried across continue-as-new.

    A draft falls due at local midnight of `boundary` on its own calendar. Each pass finalizes
    the drafts that fell due in (`since`, `until`], examining them `after` a cursor in id order;
    the next pass starts at `next_due`, the earliest due instant still ahead.
    """

    boundary: str  # ISO date: the first day of the new period
    until: str
    since: str | None = None
    after: str | None = None
    next_due: str | None = None


@dataclass
class FinalizeDraftsInput:
    issuer_prefix: str
    actor: str = "schedule"
    # The Schedule's time zone: its local date when the run starts is the period boundary.
    time_zone: str = "UTC"
    batch_size: int = 100  # drafts examined (so at most finalized) per activity call
    batches_per_run: int = 20  # then continue as new, or sooner if Temporal suggests it
    progress: DraftsPass | None = None  # set only by continue-as-new


@dataclass
class DueDraftsRequest:
    time_zone: str
    progress: DraftsPass | None  # None: the first pass, due by `at`, boundary from time_zone
    at: str
    limit: int


@dataclass
class DueDrafts:
    """One batch of a pass: `progress` moved on past the drafts it examined."""

    invoice_ids: list[str]
    progress: DraftsPass
    pass_done: bool


@dataclass
class IssueCreditNoteInput:
    invoice_id: str
    lines: list[CreditLine]
    reason: str
    source: str
    actor: str
    dedupe_key: str
    issuer_prefix: str
    evidence: list[dict[str, str]] = field(default_factory=list)
    at: str | None = None  # set by the workflow before it calls the activity


@dataclass
class IssuedCreditNote:
    credit_note_id: str
    number: str
    total_minor: int


def _finalize(invoice_id: str, issuer_prefix: str, actor: str) -> Any:
    request = FinalizeRequest(invoice_id, issuer_prefix, actor, iso(workflow.now()))
    return _activity(
        "finalize_invoice", request, FinalizedInvoice, f"finalize invoice {invoice_id}"
    )


@workflow.defn
class FinalizeInvoice:
    """Number, date and freeze one invoice. Id ``finalize-<invoice id>``: at most one at a time."""

    @workflow.run
    async def run(self, inp: FinalizeInput) -> FinalizedInvoice:
        result: FinalizedInvoice = await _finalize(inp.invoice_id, inp.issuer_prefix, inp.actor)
        await record_document("invoice", result.invoice_id, inp.actor)
        return result


@workflow.defn
class FinalizeDrafts:
    """Finalize every draft that has lines (run by the Schedule); empty drafts stay open.

    Each draft is finalized once its own calendar's local date has reached the period boundary
    (the Schedule's local date at the start), so it is dated on that first day and numbered in
    that year: a New York draft waits for midnight in New York, not in UTC. Drafts come in
    batches, and the run continues as new before its history grows large.

    Returns the numbers issued by this execution (since its last continue-as-new), in order.
    """

    @workflow.run
    async def run(self, inp: FinalizeDraftsInput) -> list[str]:
        if not workflow.patched(BATCHES_PATCH):
            return await self._all_at_once(inp)  # runs started before batches, until they end
        progress, numbers = inp.progress, []
        for _ in range(inp.batches_per_run):
            request = DueDraftsRequest(inp.time_zone, progress, iso(workflow.now()), inp.batch_size)
            batch: DueDrafts = await _activity(
                "list_due_drafts", request, DueDrafts, "list drafts due for finalizing"
            )
            numbers += await self._finalize_each(batch.invoice_ids, inp)
            progress = batch.progress
            if batch.pass_done:
                if progress.next_due is None:
                    return numbers
                ahead = datetime.fromisoformat(progress.next_due) - workflow.now()
                if ahead > timedelta(0):
                    summary = f"wait for drafts due at {progress.next_due}"
                    await workflow.sleep(ahead, summary=summary)
                progress = DraftsPass(progress.boundary, iso(workflow.now()), progress.until)
            if workflow.info().is_continue_as_new_suggested():
                break
        workflow.continue_as_new(replace(inp, progress=progress))

    async def _finalize_each(self, invoice_ids: list[str], inp: FinalizeDraftsInput) -> list[str]:
        numbers = []
        for invoice_id in invoice_ids:
            try:
                result: FinalizedInvoice = await _finalize(invoice_id, inp.issuer_prefix, inp.actor)
            except ActivityError as err:
                # A draft emptied or finalized by hand meanwhile is no reason to stop the batch.
                workflow.logger.warning("draft %s not finalized: %s", invoice_id, err.cause)
                continue
            if not result.newly:
                continue
            numbers.append(result.number)
            try:
                await record_document("invoice", result.invoice_id, inp.actor)
            except ActivityError as err:  # issued all the same: the batch goes on
                workflow.logger.warning("PDF of %s not recorded: %s", result.number, err.cause)
        return numbers

    async def _all_at_once(self, inp: FinalizeDraftsInput) -> list[str]:
        """The commands of runs started before BATCHES_PATCH: every draft, in one history."""
        drafts: list[str] = await _activity(
            "list_non_empty_drafts", None, list[str], "list drafts with lines"
        )
        return await self._finalize_each(drafts, inp)


@workflow.defn
class IssueCreditNote:
    """Issue one credit note. Id ``credit-<hash of the dedupe key>``."""

    @workflow.run
    async def run(self, inp: IssueCreditNoteInput) -> IssuedCreditNote:
        request = replace(inp, at=iso(workflow.now()))
        result: IssuedCreditNote = await _activity(
            "issue_credit_note",
            request,
            IssuedCreditNote,
            f"credit note on invoice {inp.invoice_id} ({inp.source})",
        )
        await record_document("credit_note", result.credit_note_id, inp.actor)
        return result
