from typing import Any

from fastapi import APIRouter

from api.deps import CallerDep, SessionDep
from api.problems import Problem, not_found
from api.views import invoice_view
from db.models import Invoice

router = APIRouter(prefix="/v1/invoices", tags=["invoices"])


@router.get("/{invoice_id}")
def get_invoice(invoice_id: str, session: SessionDep, caller: CallerDep) -> dict[str, Any]:
    if caller.kind != "admin":
        raise Problem(403, "forbidden", "Forbidden", "Invoices are visible to admin only.")
    invoice = session.get(Invoice, invoice_id)
    if invoice is None:
        raise not_found("Invoice", invoice_id)
    return invoice_view(session, invoice)
