"""Which change orders an engagement can take: pure checks of a proposed change set.

A change order may update or remove only *unbilled* milestones, may add milestones under new keys,
and must leave a dependency graph without unknown or cyclic edges. The API checks a proposal with
``check_changes`` when it arrives, and the apply activity checks it again against the state at
approval time, so a milestone that was triggered or billed meanwhile is never rewritten.

``changes`` is the JSON form the API stores: ``{"update": [{"milestone": key, <field>: value}],
"add": [{"key": ..., "depends_on": [{"milestone": key}], ...}], "remove": [key, ...]}``, and
optionally ``"time_and_materials"``: new T&M terms, which ``services.time_term_changes`` checks.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from domain.dependencies import find_cycle, unknown_dependencies
from domain.lifecycle import MilestoneStatus

# A milestone is unbilled while nothing of it was accepted and no run is open on it.
UNBILLED_STATUSES = (MilestoneStatus.PENDING, MilestoneStatus.REJECTED, MilestoneStatus.INELIGIBLE)
REMOVED = MilestoneStatus.REMOVED
INVALID = "invalid"  # the request is wrong: 422
CONFLICT = "conflict"  # the engagement's state forbids it: 409


@dataclass(frozen=True)
class MilestoneState:
    """What the checks need to know about one of the engagement's milestones."""

    key: str
    status: str
    billed_minor: int = 0
    accepted_percent: str = "0"
    open_run_id: str | None = None
    depends_on: tuple[str, ...] = ()
    trigger: str = "manual"
    machine_checkable: bool = False
    kind: str = "standard"  # standard | bonus | success_fee
    clawback: bool = False

    def why_not_unbilled(self) -> str | None:
        """None when the milestone is unbilled, else the reason it may not change."""
        if self.status == REMOVED:
            return f"milestone {self.key} was removed by an earlier change order"
        if self.open_run_id is not None:
            return f"milestone {self.key} has an open run ({self.open_run_id})"
        if self.billed_minor or Decimal(self.accepted_percent) != 0:
            return f"milestone {self.key} is already billed ({self.accepted_percent}% accepted)"
        if self.status not in UNBILLED_STATUSES:
            return f"milestone {self.key} is {self.status}"
        return None


@dataclass(frozen=True)
class Refusal:
    kind: str  # INVALID | CONFLICT
    field: str
    message: str


def check_changes(
    milestones: Sequence[MilestoneState], changes: Mapping[str, Any]
) -> list[Refusal]:
    """Every reason the change set cannot apply to these milestones; empty when it can."""
    updates: list[Mapping[str, Any]] = list(changes.get("update") or [])
    adds: list[Mapping[str, Any]] = list(changes.get("add") or [])
    removes: list[str] = list(changes.get("remove") or [])
    if not (updates or adds or removes or changes.get("time_and_materials")):
        return [Refusal(INVALID, "changes", "a change order needs at least one change")]
    by_key = {m.key: m for m in milestones}
    refusals = _touched(by_key, updates, removes)
    refusals += _added(by_key, adds)
    refusals += _fields_for_kind(by_key, updates)
    refusals += _automatic_checks(by_key, updates)
    refusals += _fee_bases(by_key, adds, removes)
    # The graph as it would be if the rest applied: a refused milestone keeps its edges.
    movable = {k for k, m in by_key.items() if m.why_not_unbilled() is None}
    refusals += _graph(by_key, movable, updates, adds, removes)
    return refusals


def _touched(
    by_key: Mapping[str, MilestoneState], updates: Sequence[Mapping[str, Any]], removes: list[str]
) -> list[Refusal]:
    touched = [(f"changes.update.{i}.milestone", u["milestone"]) for i, u in enumerate(updates)]
    touched += [(f"changes.remove.{i}", key) for i, key in enumerate(removes)]
    refusals = []
    seen: set[str] = set()
    for field, key in touched:
        milestone = by_key.get(key)
        if milestone is None:
            refusals.append(Refusal(INVALID, field, f"unknown milestone {key!r}"))
        elif key in seen:
            refusals.append(Refusal(INVALID, field, f"milestone {key} is changed more than once"))
        else:
            reason = milestone.why_not_unbilled()
            if reason is not None:
                refusals.append(Refusal(CONFLICT, field, reason))
        seen.add(key)
    return refusals


def _added(
    by_key: Mapping[str, MilestoneState], adds: Sequence[Mapping[str, Any]]
) -> list[Refusal]:
    refusals = []
    seen: set[str] = set()
    for i, added in enumerate(adds):
        key, field = added["key"], f"changes.add.{i}.key"
        if key in by_key:
            used = " (removed milestones keep theirs)" if by_key[key].status == REMOVED else ""
            message = f"milestone key {key!r} is already used by this engagement{used}"
            refusals.append(Refusal(INVALID, field, message))
        elif key in seen:
            refusals.append(Refusal(INVALID, field, f"milestone key {key!r} is added twice"))
        seen.add(key)
    return refusals


def _fields_for_kind(
    by_key: Mapping[str, MilestoneState], updates: Sequence[Mapping[str, Any]]
) -> list[Refusal]:
    """The same rules as for a new milestone: some fields belong to some kinds only."""
    refusals = []
    for i, update in enumerate(updates):
        current = by_key.get(update["milestone"])
        if current is None:
            continue
        field, key, kind = f"changes.update.{i}", current.key, current.kind
        if "deadline" in update and kind == "standard":
            message = f"{key} is a standard milestone: only a bonus or a success fee has a deadline"
            refusals.append(Refusal(INVALID, f"{field}.deadline", message))
        if "fee_minor" in update and kind == "success_fee":
            message = f"{key} is a success fee, computed from its success_fee terms: no fee_minor"
            refusals.append(Refusal(INVALID, f"{field}.fee_minor", message))
        if update.get("allow_partial") and (kind == "success_fee" or current.clawback):
            message = f"{key} is billed whole, never partially"
            refusals.append(Refusal(INVALID, f"{field}.allow_partial", message))
    return refusals


def _fee_bases(
    by_key: Mapping[str, MilestoneState], adds: Sequence[Mapping[str, Any]], removes: list[str]
) -> list[Refusal]:
    """A new bonus priced as a percent of a milestone needs a standard one that stays."""
    kinds = {m.key: m.kind for m in by_key.values() if m.status != REMOVED}
    kinds |= {a["key"]: a.get("kind", "standard") for a in adds}
    refusals = []
    for i, added in enumerate(adds):
        basis = (added.get("fee_percent_of") or {}).get("milestone")
        field = f"changes.add.{i}.fee_percent_of"
        if basis is None:
            continue
        if basis not in kinds or basis in removes:
            refusals.append(Refusal(INVALID, field, f"unknown milestone {basis!r}"))
        elif kinds[basis] != "standard":
            message = (
                f"{basis} is a {kinds[basis]} milestone; "
                "a bonus is a percent of a standard milestone's fee"
            )
            refusals.append(Refusal(INVALID, field, message))
    return refusals


def _automatic_checks(
    by_key: Mapping[str, MilestoneState], updates: Sequence[Mapping[str, Any]]
) -> list[Refusal]:
    """An automatic milestone must keep a criterion that a machine can check."""
    refusals = []
    for i, update in enumerate(updates):
        current = by_key.get(update["milestone"])
        if current is None:
            continue
        trigger = update.get("trigger", current.trigger)
        if "acceptance_criteria" in update:
            checkable = any(c.get("metric") for c in update["acceptance_criteria"])
        else:
            checkable = current.machine_checkable
        if trigger == "automatic" and not checkable:
            message = (
                f"milestone {current.key} would be automatic without a machine-checkable criterion"
            )
            refusals.append(Refusal(INVALID, f"changes.update.{i}", message))
    return refusals


def _graph(
    by_key: Mapping[str, MilestoneState],
    movable: set[str],
    updates: Sequence[Mapping[str, Any]],
    adds: Sequence[Mapping[str, Any]],
    removes: list[str],
) -> list[Refusal]:
    """The dependency graph as it would be after the change: no unknown or cyclic edges."""
    removed = set(removes) & movable
    edges: dict[str, list[str]] = {
        m.key: list(m.depends_on)
        for m in by_key.values()
        if m.status != REMOVED and m.key not in removed
    }
    fields: dict[str, str] = {}  # where each updated or added milestone's deps were given
    refusals = []
    for i, update in enumerate(updates):
        key = update["milestone"]
        if "depends_on" in update and key in edges and key in movable:
            edges[key] = [d["milestone"] for d in update["depends_on"]]
            fields[key] = f"changes.update.{i}.depends_on"
    for i, added in enumerate(adds):
        if added["key"] not in edges:
            edges[added["key"]] = [d["milestone"] for d in added.get("depends_on") or []]
            fields[added["key"]] = f"changes.add.{i}.depends_on"
    for key, deps in edges.items():
        for dep in sorted({d for d in deps if deps.count(d) > 1}):
            message = f"{key} depends on {dep} twice"
            refusals.append(Refusal(INVALID, fields.get(key, "changes"), message))
    for key, dep in unknown_dependencies(edges):
        if dep in removed:
            message = f"{key} depends on {dep}, which this change order removes"
            # An untouched dependant keeps its edges: the removal is what breaks them.
            field = fields.get(key, f"changes.remove.{removes.index(dep)}")
        elif dep in by_key:
            message = f"{key} depends on {dep}, which was removed by an earlier change order"
            field = fields.get(key, "changes")
        else:
            message = f"{key} depends on unknown milestone {dep!r}"
            field = fields.get(key, "changes")
        refusals.append(Refusal(INVALID, field, message))
    cycle = find_cycle(edges)
    if cycle:
        refusals.append(Refusal(INVALID, "changes", f"cyclic depends_on: {' → '.join(cycle)}"))
    return refusals
