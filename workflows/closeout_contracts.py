"""What an engagement's close-out and its activities pass each other: the frozen close-out,
its steps, and the retention it released."""

from dataclasses import dataclass, field
from typing import Any

from workflows.contracts import ApprovalPolicy, Subject


@dataclass
class Waiver:
    """An unaccepted milestone the admin waived at close-out, with the reason."""

    milestone_id: str
    milestone_key: str
    reason: str


@dataclass
class CloseoutInput:
    """Everything a close-out needs, frozen when it is requested (also the runs row's snapshot)."""

    run_id: str
    engagement_id: str
    customer_id: str
    engagement_name: str
    currency: str
    policy: ApprovalPolicy
    waivers: list[Waiver] = field(default_factory=list)
    # A span ({"duration": "P180D"} or {"business_days": N}): the warranty before release.
    release_delay: dict[str, Any] | None = None
    note: str | None = None
    requested_by: str = "admin"

    @property
    def milestone_id(self) -> str | None:
        return None  # a close-out is about the whole engagement

    @property
    def subject(self) -> Subject:
        return Subject(
            run_id=self.run_id,
            engagement_id=self.engagement_id,
            milestone_id=None,
            title=f"Close-out of {self.engagement_name}",
            policy=self.policy,
        )


@dataclass
class CloseoutStep:
    """A close-out activity's argument: the close-out, when, and for stage changes the stage."""

    closeout: CloseoutInput
    at: str
    stage: str | None = None
    outcome: str | None = None
    detail: str | None = None


@dataclass
class RetentionReleased:
    released_minor: int
    invoice_id: str | None
