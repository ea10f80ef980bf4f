from typing import Any

from fastapi import APIRouter, status
from sqlalchemy import select

from api.deps import AdminDep, CallerDep, SessionDep
from api.models import Customer as CustomerOut
from api.models import InvoiceSummary, Page
from api.problems import Problem, not_found
from api.routes.listings import Cursor, Limit, keyset_page
from api.schemas import CustomerIn
from api.views import customer_view, invoice_summary
from db.models import Customer, Invoice, new_id

router = APIRouter(prefix="/v1/customers", tags=["customers"])


# Returns the view (its model validates it on the way out): tests build fixtures by calling it.
@router.post("", status_code=status.HTTP_201_CREATED, response_model=CustomerOut)
def create_customer(body: CustomerIn, session: SessionDep, _: AdminDep) -> dict[str, Any]:
    customer = Customer(
        id=new_id("cus"),
        name=body.name,
        currency=body.currency,
        external_ref=body.external_ref,
        metadata_=body.metadata or {},
    )
    session.add(customer)
    session.commit()
    return customer_view(customer)


@router.get("/{customer_id}")
def get_customer(customer_id: str, session: SessionDep, caller: CallerDep) -> CustomerOut:
    return CustomerOut.model_validate(customer_view(_customer(session, customer_id, caller)))


@router.get("/{customer_id}/invoices")
def list_invoices(
    customer_id: str,
    session: SessionDep,
    caller: CallerDep,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[InvoiceSummary]:
    """The customer's invoices, oldest first."""
    customer = _customer(session, customer_id, caller)
    query = select(Invoice).where(Invoice.customer_id == customer.id)
    rows, next_cursor = keyset_page(session, query, Invoice.created_at, Invoice.id, cursor, limit)
    return Page[InvoiceSummary](items=[invoice_summary(i) for i in rows], next_cursor=next_cursor)


def _customer(session: SessionDep, customer_id: str, caller: CallerDep) -> Customer:
    if caller.kind != "admin":
        raise Problem(403, "forbidden", "Forbidden", "Customers are visible to admin only.")
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise not_found("Customer", customer_id)
    return customer
