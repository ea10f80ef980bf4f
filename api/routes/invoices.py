import asyncio
from collections.abc import Awaitable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Header, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session
from temporalio.client import WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.service import RPCError

from api.deps import AdminDep, CallerDep, SessionDep, SettingsDep, TemporalDep
from api.models import Invoice as InvoiceOut
from api.problems import Problem, not_found
from api.routes.documents import (
    ACCEPT_DESCRIPTION,
    NEGOTIATED,
    pdf_response,
    require_invoice_reader,
    wants_pdf,
)
from api.views import invoice_view
from db.models import Invoice
from services.pdf.invoices import invoice_document
from workflows.invoicing import FinalizeInput, FinalizeInvoice

router = APIRouter(prefix="/v1/invoices", tags=["invoices"])

# How long a request waits for its document workflow before answering 503 (safe to retry).
WORKFLOW_PATIENCE_SECONDS = 30
T = TypeVar("T")


@router.get("/{invoice_id}", response_model=InvoiceOut, responses=NEGOTIATED)
async def get_invoice(
    invoice_id: str,
    session: SessionDep,
    caller: CallerDep,
    settings: SettingsDep,
    accept: Annotated[str | None, Header(description=ACCEPT_DESCRIPTION)] = None,
) -> Response | InvoiceOut:
    """The invoice as JSON, or as a PDF when Accept prefers application/pdf."""
    require_invoice_reader(caller)
    if wants_pdf(accept):
        return await pdf_response(session, settings, invoice_document, invoice_id)
    return await run_in_threadpool(_invoice_json, session, invoice_id)


def _invoice_json(session: Session, invoice_id: str) -> InvoiceOut:
    invoice = session.get(Invoice, invoice_id)
    if invoice is None:
        raise not_found("Invoice", invoice_id)
    return InvoiceOut.model_validate(invoice_view(session, invoice))


@router.post("/{invoice_id}/finalize")
async def finalize_invoice(
    invoice_id: str,
    session: SessionDep,
    caller: AdminDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> InvoiceOut:
    """Number, date and freeze the invoice; finalizing a finalized invoice returns it as is."""
    if await run_in_threadpool(session.get, Invoice, invoice_id) is None:
        raise not_found("Invoice", invoice_id)
    # End the read transaction: the workflow's activity takes the invoice's lock.
    await run_in_threadpool(session.rollback)
    await outcome_of(
        temporal.execute_workflow(
            FinalizeInvoice.run,
            FinalizeInput(invoice_id, settings.issuer_prefix, caller.actor),
            id=f"finalize-{invoice_id}",
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary=f"finalize invoice {invoice_id}",
        ),
        "The invoice",
    )
    invoice = await run_in_threadpool(session.get_one, Invoice, invoice_id, populate_existing=True)
    return InvoiceOut.model_validate(await run_in_threadpool(invoice_view, session, invoice))


BUSINESS_PROBLEMS = {
    "InvoiceNotFound": (404, "not-found", "Invoice not found"),
    "InvoiceEmpty": (409, "invoice-empty", "Invoice is empty"),
    "InvoiceInconsistent": (409, "invoice-inconsistent", "Invoice total does not add up"),
}


async def outcome_of(result: Awaitable[T], what: str) -> T:
    """Await a document workflow; its business errors become problems, a stall a 503."""
    try:
        return await asyncio.wait_for(result, WORKFLOW_PATIENCE_SECONDS)
    except WorkflowFailureError as failure:
        error = business_error(failure)
        if error is None:
            raise
        if error.type == "CreditRefused":
            status = (error.details or [{}])[0].get("status", 409)
            raise credit_refused(status, error.message) from failure
        if error.type in BUSINESS_PROBLEMS:
            status, slug, title = BUSINESS_PROBLEMS[error.type]
            raise Problem(status, slug, title, error.message) from failure
        raise
    except (TimeoutError, RPCError) as exc:
        raise Problem(
            503,
            "temporal-unavailable",
            "Not done yet",
            f"{what} could not be processed in time; retry the same request (it is idempotent).",
        ) from exc


def credit_refused(status: int, message: str) -> Problem:
    slug = "not-found" if status == 404 else "credit-refused"
    return Problem(status, slug, "Credit note refused", message)


def business_error(failure: WorkflowFailureError) -> ApplicationError | None:
    """The activity's ApplicationError behind a failed document workflow, if that is the cause."""
    cause = failure.cause
    if isinstance(cause, ActivityError):
        cause = cause.cause
    return cause if isinstance(cause, ApplicationError) else None
