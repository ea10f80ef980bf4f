"""What a source is registered as: a hand-written mapping, or a preset that builds one.

Presets are only mappings made from a few options, so every delivery takes one code path:

- ``generic``: Tollgate's own trigger JSON plus the milestone's key,
  ``{"milestone": "phase-1", "completion_percent": "100", "kpis": {...}, "note": "..."}``.
- ``alertmanager``: a Prometheus Alertmanager webhook (version 4) is a trigger when its group is
  ``resolved`` and its common ``alertname`` label is the configured one; KPIs are read from the
  common annotations (or, failing that, the common labels) the options name, and so is the SLA
  ``period`` (``2026-11``) when the option names the annotation or label holding it.
- ``grafana``: a Grafana alerting webhook is a trigger when an alert of the configured rule
  (its ``alertname`` label) is ``resolved``; KPIs are read from that alert's annotations, labels
  or ``values`` (by refId), in that order.
"""

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from services.errors import invalid
from services.fields import KpiName, Name, Strict
from services.mappings import MappingIn

# Names end up inside JMESPath literals: no quote or backslash can break out of one.
Quotable = Annotated[str, Field(strict=True, min_length=1, max_length=200, pattern=r"^[^'\\\"`]+$")]
MilestoneKey = Annotated[str, Field(strict=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]
KpiSources = Annotated[dict[KpiName, Quotable], Field(max_length=100)]


class SourceKind(StrEnum):
    MAPPING = "mapping"
    GENERIC = "generic"
    ALERTMANAGER = "alertmanager"
    GRAFANA = "grafana"


class SourceIn(Strict):
    """A source to register: a hand-written ``mapping``, or a preset and its options."""

    name: Name
    kind: SourceKind
    mapping: MappingIn | None = None  # mapping
    milestone: MilestoneKey | None = None  # alertmanager, grafana: the milestone's key
    alertname: Quotable | None = None  # alertmanager: the alert's name
    rule: Quotable | None = None  # grafana: the alert rule's title (its alertname label)
    # alertmanager, grafana: metric -> the annotation, label (or Grafana value refId) holding it
    kpis: KpiSources | None = None
    # alertmanager: the annotation (or label) naming the SLA period reported on, if any
    period: Quotable | None = None


OPTIONS = {
    SourceKind.MAPPING: ("mapping",),
    SourceKind.GENERIC: (),
    SourceKind.ALERTMANAGER: ("milestone", "alertname", "kpis", "period"),
    SourceKind.GRAFANA: ("milestone", "rule", "kpis"),
}
OPTIONAL = {"kpis", "period"}


def options(source: SourceIn) -> dict[str, object]:
    """The preset's options as given (nothing for a hand-written mapping)."""
    names = set(OPTIONS[source.kind]) - {"mapping"}
    return source.model_dump(mode="json", include=names, exclude_none=True)


def build_mapping(source: SourceIn) -> MappingIn:
    """The mapping a source's deliveries go through; a 422 naming a missing or foreign option."""
    allowed = OPTIONS[source.kind]
    for name in ("mapping", "milestone", "alertname", "rule", "kpis", "period"):
        given = getattr(source, name) is not None
        if given and name not in allowed:
            raise invalid(name, f"a {source.kind} source takes no {name}")
        if not given and name in allowed and name not in OPTIONAL:
            raise invalid(name, f"a {source.kind} source needs {name}")
    kpis = source.kpis or {}
    if source.mapping is not None:  # only a mapping source has one, checked above
        return source.mapping
    if source.kind == SourceKind.GENERIC:
        return MappingIn(
            milestone="milestone",
            completion_percent="completion_percent",
            kpi_object="kpis",
            external_ref="external_ref",
            note="note",
            confirmation_id="confirmation_id",
            period="period",
        )
    if source.kind == SourceKind.ALERTMANAGER:
        return MappingIn(
            milestone=f"'{source.milestone}'",
            when=f"status == 'resolved' && commonLabels.alertname == '{source.alertname}'",
            kpis={
                metric: f'commonAnnotations."{name}" || commonLabels."{name}"'
                for metric, name in kpis.items()
            },
            external_ref="alerts[0].fingerprint",
            note="commonAnnotations.summary",
            period=(
                f'commonAnnotations."{source.period}" || commonLabels."{source.period}"'
                if source.period
                else None
            ),
        )
    alert = f"alerts[?status == 'resolved' && labels.alertname == '{source.rule}'] | [0]"
    return MappingIn(
        milestone=f"'{source.milestone}'",
        when=f"{alert} != null",
        kpis={
            metric: f'{alert}.[annotations."{name}", labels."{name}", values."{name}"]'
            " | [?@ != null] | [0]"
            for metric, name in kpis.items()
        },
        external_ref=f"{alert}.fingerprint",
        note=f"{alert}.annotations.summary",
    )
