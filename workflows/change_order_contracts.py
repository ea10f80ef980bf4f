"""What a change order's approval and its activities pass each other."""

from dataclasses import dataclass
from typing import Any

from workflows.contracts import ApprovalPolicy, Subject


@dataclass
class ChangeOrderInput:
    """A proposed change order, frozen when proposed (also its runs row's snapshot)."""

    run_id: str
    change_order_id: str
    engagement_id: str
    customer_id: str
    reason: str
    # The change set as stored on the change order: {"update": [...], "add": [...], "remove": [...]}
    changes: dict[str, Any]
    base_version: int
    policy: ApprovalPolicy

    @property
    def milestone_id(self) -> str | None:
        return None  # a change order is about the engagement's terms

    @property
    def subject(self) -> Subject:
        headline = (self.reason.strip().splitlines() or [""])[0][:120]
        return Subject(
            run_id=self.run_id,
            engagement_id=self.engagement_id,
            milestone_id=None,
            title=f"Change order {self.change_order_id}: {headline}",
            policy=self.policy,
        )


@dataclass
class ChangeOrderStep:
    """A change-order activity's argument: the order, when, and the stage or sign-off verdict."""

    change_order: ChangeOrderInput
    at: str
    stage: str | None = None
    outcome: str | None = None  # approved | rejected | expired
    detail: str = ""


@dataclass
class ChangeOrderResult:
    status: str  # applied | conflicted | rejected | expired
    version: int | None = None
    detail: str | None = None
