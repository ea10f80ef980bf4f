from typing import Any

from fastapi import APIRouter, status
from sqlalchemy import select

from api.deps import AdminDep, CallerDep, SessionDep
from api.problems import Problem, not_found
from api.schemas import CustomerIn
from api.views import customer_view, invoice_summary
from db.models import Customer, Invoice, new_id

router = APIRouter(prefix="/v1/customers", tags=["customers"])


@router.post("", status_code=status.HTTP_201_CREATED)
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
def get_customer(customer_id: str, session: SessionDep, caller: CallerDep) -> dict[str, Any]:
    return customer_view(_customer(session, customer_id, caller))


@router.get("/{customer_id}/invoices")
def list_invoices(customer_id: str, session: SessionDep, caller: CallerDep) -> list[dict[str, Any]]:
    customer = _customer(session, customer_id, caller)
    invoices = session.scalars(
        select(Invoice).where(Invoice.customer_id == customer.id).order_by(Invoice.created_at)
    ).all()
    return [invoice_summary(i) for i in invoices]


def _customer(session: SessionDep, customer_id: str, caller: CallerDep) -> Customer:
    if caller.kind != "admin":
        raise Problem(403, "forbidden", "Forbidden", "Customers are visible to admin only.")
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise not_found("Customer", customer_id)
    return customer
