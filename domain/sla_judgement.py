"""What an ended SLA period's runs make of it when it is judged."""

from collections.abc import Iterable
from enum import StrEnum

from domain.lifecycle import UNBILLED_ENDS, RunStage


class PeriodStatus(StrEnum):
    MET = "met"  # a run billed it
    NOT_MET = "not_met"  # judged with no billed run
    OPEN = "open"  # not ended yet
    PENDING = "pending"  # ended, not yet judged: in its report grace, or a run is still open


def verdict(stages: Iterable[str]) -> PeriodStatus:
    """``MET`` when a run billed the period, ``PENDING`` while one is still open (a report
    arrived in time and is being checked or signed off), else ``NOT_MET``."""
    stages = set(stages)
    if RunStage.BILLED in stages:
        return PeriodStatus.MET
    if stages - UNBILLED_ENDS:
        return PeriodStatus.PENDING
    return PeriodStatus.NOT_MET
