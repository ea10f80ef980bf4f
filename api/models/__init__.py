"""Response models: every body the API answers with, each field described with an example.

Views (``api.views`` and the services' ``*_view`` functions) shape a row as a dict; the route
validates it into its model, which refuses keys it does not declare."""

from api.models.audit import AuditCheck, AuditEvent, Evidence
from api.models.base import ApiModel, Page, example_of, json_response
from api.models.change_orders import ChangeOrder, ChangeOrderAccepted
from api.models.clawbacks import ClawbackWatch, KpiReportAccepted
from api.models.customers import Customer, IntegrationToken, Principal
from api.models.encounters import (
    Encounter,
    EncounterAccepted,
    EncounterBatch,
    EncounterUpload,
    FeeSchedule,
    Payer,
)
from api.models.engagements import Engagement, EngagementAsOf, EngagementItem, EngagementVersion
from api.models.health import Health
from api.models.invoices import (
    CreditNote,
    CreditNoteSummary,
    Invoice,
    InvoiceSummary,
    IssuedDocument,
)
from api.models.notifications import (
    Notification,
    NotificationDetail,
    Redelivery,
    WebhookEndpoint,
)
from api.models.runs import Approval, CloseoutAccepted, RunAccepted, RunItem, RunStatus
from api.models.sources import (
    Delivery,
    DeliveryAnswer,
    Source,
    SourceWithSecret,
    TriggerUrl,
    TriggerUrlIssued,
)
from api.models.time import (
    PeriodClosing,
    PostedEntry,
    TimeEntriesPosted,
    TimeEntry,
    TimeEntryBatch,
    TimePeriod,
)

__all__ = [
    "ApiModel",
    "Approval",
    "AuditCheck",
    "AuditEvent",
    "ChangeOrder",
    "ChangeOrderAccepted",
    "ClawbackWatch",
    "CloseoutAccepted",
    "CreditNote",
    "CreditNoteSummary",
    "Customer",
    "Delivery",
    "DeliveryAnswer",
    "Encounter",
    "EncounterAccepted",
    "EncounterBatch",
    "EncounterUpload",
    "Engagement",
    "EngagementAsOf",
    "EngagementItem",
    "EngagementVersion",
    "Evidence",
    "FeeSchedule",
    "Health",
    "IntegrationToken",
    "Invoice",
    "InvoiceSummary",
    "IssuedDocument",
    "KpiReportAccepted",
    "Notification",
    "NotificationDetail",
    "Page",
    "Payer",
    "PeriodClosing",
    "PostedEntry",
    "Principal",
    "Redelivery",
    "RunAccepted",
    "RunItem",
    "RunStatus",
    "Source",
    "SourceWithSecret",
    "TimeEntriesPosted",
    "TimeEntry",
    "TimeEntryBatch",
    "TimePeriod",
    "TriggerUrl",
    "TriggerUrlIssued",
    "WebhookEndpoint",
    "example_of",
    "json_response",
]
