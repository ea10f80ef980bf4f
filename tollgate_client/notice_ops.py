"""What goes out and what comes in: notifications and webhook endpoints; inbound sources (signed
webhooks from a tracker or an alerting tool) and signed trigger URLs."""

from collections.abc import Mapping, Sequence
from typing import Any

from api.models import (
    Delivery,
    Notification,
    NotificationDetail,
    Page,
    Redelivery,
    Source,
    SourceWithSecret,
    TriggerUrl,
    TriggerUrlIssued,
    WebhookEndpoint,
)
from tollgate_client.calls import Call, given, model, nothing, operation, segment


class NoticeOperations:
    @operation
    def list_notifications(
        self,
        *,
        status: str | None = None,
        run_id: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Call[Page[Notification]]:
        """Notifications, oldest first; ``status`` is pending, delivered or dead."""
        params = {"status": status, "run_id": run_id, "cursor": cursor, "limit": limit}
        return Call("GET", "/v1/notifications", model(Page[Notification]), params=params)

    @operation
    def get_notification(self, notification_id: int) -> Call[NotificationDetail]:
        return Call("GET", f"/v1/notifications/{notification_id}", model(NotificationDetail))

    @operation
    def redeliver_notification(self, notification_id: int) -> Call[Redelivery]:
        """Send a dead notification again (409 for any other)."""
        path = f"/v1/notifications/{notification_id}/redeliver"
        return Call("POST", path, model(Redelivery))

    @operation
    def create_webhook_endpoint(
        self,
        url: str,
        events: Sequence[str],
        *,
        engagement_id: str | None = None,
        customer_id: str | None = None,
        secret: str | None = None,
    ) -> Call[WebhookEndpoint]:
        """Where notices of ``events`` go, for one engagement or one customer (give one)."""
        body = given(
            url=url,
            events=list(events),
            engagement_id=engagement_id,
            customer_id=customer_id,
            secret=secret,
        )
        return Call("POST", "/v1/webhook-endpoints", model(WebhookEndpoint), json=body)

    @operation
    def create_source(
        self, engagement_id: str, source: Mapping[str, Any]
    ) -> Call[SourceWithSecret]:
        """Register a source (``{name, kind, mapping | preset options}``; docs/api.md); its
        signing secret is in this answer only."""
        path = f"/v1/engagements/{segment(engagement_id)}/sources"
        return Call("POST", path, model(SourceWithSecret), json=dict(source))

    @operation
    def list_sources(
        self, engagement_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> Call[Page[Source]]:
        path = f"/v1/engagements/{segment(engagement_id)}/sources"
        params = {"cursor": cursor, "limit": limit}
        return Call("GET", path, model(Page[Source]), params=params)

    @operation
    def get_source(self, source_id: str) -> Call[Source]:
        return Call("GET", f"/v1/sources/{segment(source_id)}", model(Source))

    @operation
    def deactivate_source(self, source_id: str) -> Call[Source]:
        return Call("DELETE", f"/v1/sources/{segment(source_id)}", model(Source))

    @operation
    def rotate_source_secret(
        self, source_id: str, *, overlap_hours: int | None = None
    ) -> Call[SourceWithSecret]:
        """A new signing secret; the old one keeps verifying for ``overlap_hours`` (API: 24)."""
        path = f"/v1/sources/{segment(source_id)}/rotate-secret"
        body = given(overlap_hours=overlap_hours)
        return Call("POST", path, model(SourceWithSecret), json=body)

    @operation
    def list_deliveries(
        self, source_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> Call[Page[Delivery]]:
        """What a source's webhooks delivered and how each was answered."""
        path = f"/v1/sources/{segment(source_id)}/deliveries"
        params = {"cursor": cursor, "limit": limit}
        return Call("GET", path, model(Page[Delivery]), params=params)

    @operation
    def create_trigger_url(
        self, engagement_id: str, milestone: str, expires_at: str, *, max_uses: int | None = None
    ) -> Call[TriggerUrlIssued]:
        """A signed URL that triggers ``milestone`` (its key or id) with no token, until
        ``expires_at`` (RFC 3339 with an offset)."""
        path = f"/v1/engagements/{segment(engagement_id)}/trigger-urls"
        body = given(milestone=milestone, expires_at=expires_at, max_uses=max_uses)
        return Call("POST", path, model(TriggerUrlIssued), json=body)

    @operation
    def list_trigger_urls(
        self, engagement_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> Call[Page[TriggerUrl]]:
        path = f"/v1/engagements/{segment(engagement_id)}/trigger-urls"
        params = {"cursor": cursor, "limit": limit}
        return Call("GET", path, model(Page[TriggerUrl]), params=params)

    @operation
    def revoke_trigger_url(self, trigger_url_id: str) -> Call[None]:
        return Call("DELETE", f"/v1/trigger-urls/{segment(trigger_url_id)}", nothing)
