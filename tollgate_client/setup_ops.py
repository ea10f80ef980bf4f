"""Setting up: principals, customers, engagements, evidence, and the health check."""

from collections.abc import Mapping
from typing import Any

from api.models import (
    Customer,
    Engagement,
    EngagementItem,
    EngagementVersion,
    Evidence,
    Health,
    IntegrationToken,
    Page,
    Principal,
)
from tollgate_client.calls import Call, content, given, model, operation, segment


class SetupOperations:
    @operation
    def health(self) -> Call[Health]:
        return Call("GET", "/healthz", model(Health))

    @operation
    def create_principal(self, name: str, email: str) -> Call[Principal]:
        """A person (or system) who acts through the API; the answer holds their token."""
        body = {"name": name, "email": email}
        return Call("POST", "/v1/principals", model(Principal), json=body)

    @operation
    def create_customer(
        self,
        name: str,
        currency: str,
        *,
        external_ref: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Call[Customer]:
        body = given(name=name, currency=currency, external_ref=external_ref, metadata=metadata)
        return Call("POST", "/v1/customers", model(Customer), json=body)

    @operation
    def list_customers(
        self, *, cursor: str | None = None, limit: int | None = None
    ) -> Call[Page[Customer]]:
        params = {"cursor": cursor, "limit": limit}
        return Call("GET", "/v1/customers", model(Page[Customer]), params=params)

    @operation
    def get_customer(self, customer_id: str) -> Call[Customer]:
        return Call("GET", f"/v1/customers/{segment(customer_id)}", model(Customer))

    @operation
    def create_engagement(self, engagement: Mapping[str, Any]) -> Call[Engagement]:
        """An engagement from its document (customer, milestones, approvers, …; docs/api.md)."""
        return Call("POST", "/v1/engagements", model(Engagement), json=dict(engagement))

    @operation
    def list_engagements(
        self,
        *,
        customer_id: str | None = None,
        status: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Call[Page[EngagementItem]]:
        params = {"customer_id": customer_id, "status": status, "cursor": cursor, "limit": limit}
        return Call("GET", "/v1/engagements", model(Page[EngagementItem]), params=params)

    @operation
    def get_engagement(self, engagement_id: str) -> Call[Engagement]:
        """The engagement as it is now: its milestones' progress and balances."""
        return Call("GET", f"/v1/engagements/{segment(engagement_id)}", model(Engagement))

    @operation
    def get_engagement_version(  # EngagementVersion is built with create_model:
        self, engagement_id: str, version: int
    ) -> Call[EngagementVersion]:  # type: ignore[valid-type]
        """The engagement's terms as they stood at ``version`` (change orders add versions)."""
        path = f"/v1/engagements/{segment(engagement_id)}"
        return Call("GET", path, model(EngagementVersion), params={"version": version})

    @operation
    def create_integration_token(self, engagement_id: str) -> Call[IntegrationToken]:
        path = f"/v1/engagements/{segment(engagement_id)}/integration-tokens"
        return Call("POST", path, model(IntegrationToken))

    @operation
    def upload_evidence(
        self,
        data: bytes,
        filename: str,
        *,
        content_type: str = "application/octet-stream",
        description: str | None = None,
    ) -> Call[Evidence]:
        """Store a file (a sign-off PDF, a report); its id is cited by triggers and decisions."""
        return Call(
            "POST",
            "/v1/evidence",
            model(Evidence),
            files={"file": (filename, data, content_type)},
            data=given(description=description),
        )

    @operation
    def download_evidence(self, evidence_id: str) -> Call[bytes]:
        return Call("GET", f"/v1/evidence/{segment(evidence_id)}", content)
