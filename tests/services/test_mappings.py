"""Payload mappings: presets against the committed sample payloads, exact numbers, expressions
refused at registration, ignored payloads and failures that name the expression."""

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from services.errors import Problem
from services.mappings import Ignored, Mapped, MappingFailed, MappingIn, apply, fixed_milestone
from services.presets import SourceIn, build_mapping

FIXTURES = Path(__file__).parents[1] / "fixtures" / "sources"


def sample(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(), parse_float=Decimal)


def run(mapping: MappingIn | dict[str, Any], payload: Any) -> Mapped | Ignored:
    spec = mapping.model_dump(exclude_none=True) if isinstance(mapping, MappingIn) else mapping
    return apply(spec, payload)


def parsed(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


def alertmanager(kpis: dict[str, str]) -> MappingIn:
    return build_mapping(
        SourceIn(
            kind="alertmanager",
            name="Uptime SLO",
            alertname="PlatformUptimeSLOMet",
            milestone="phase-1",
            kpis=kpis,
        )
    )


ALERTMANAGER = alertmanager({"uptime_pct": "uptime", "p95_latency_ms": "p95_latency_ms"})


def test_a_resolved_alertmanager_group_for_the_named_alert_is_a_trigger_with_its_kpis():
    assert run(ALERTMANAGER, sample("alertmanager-webhook-v4.json")) == Mapped(
        milestone="phase-1",
        key=None,
        trigger={
            "kpis": {"uptime_pct": "99.95", "p95_latency_ms": "180"},
            "external_ref": "5f1c2b7a9e3d4c60",
            "note": "Platform uptime SLO met for 2026-11",
        },
    )


def test_the_alertmanager_preset_reads_a_kpi_from_the_common_labels_without_an_annotation():
    payload = sample("alertmanager-webhook-v4.json")
    payload["commonLabels"]["tier"] = "3"
    mapped = run(alertmanager({"tier": "tier", "uptime_pct": "uptime"}), payload)
    assert isinstance(mapped, Mapped)
    assert mapped.trigger["kpis"] == {"tier": "3", "uptime_pct": "99.95"}


@pytest.mark.parametrize(
    "change",
    [
        {"status": "firing"},
        {"commonLabels": {"alertname": "SomethingElse"}},
        {"commonLabels": {}},  # a group of several alerts has no common alertname
    ],
)
def test_an_alertmanager_group_that_is_firing_or_for_another_alert_is_ignored(change):
    payload = {**sample("alertmanager-webhook-v4.json"), **change}
    ignored = run(ALERTMANAGER, payload)
    assert isinstance(ignored, Ignored)
    assert "when" in ignored.reason and "false" in ignored.reason


def test_a_missing_kpi_annotation_is_a_failure_naming_the_expression():
    payload = sample("alertmanager-webhook-v4.json")
    del payload["commonAnnotations"]["uptime"]
    with pytest.raises(MappingFailed) as failed:
        run(ALERTMANAGER, payload)
    assert failed.value.field == "kpis.uptime_pct"
    assert "commonAnnotations" in failed.value.expression
    assert "null" in failed.value.reason


def grafana(rule: str, kpis: dict[str, str]) -> MappingIn:
    return build_mapping(
        SourceIn(kind="grafana", name="Grafana", rule=rule, milestone="phase-2", kpis=kpis)
    )


def resolved(payload: dict[str, Any], *rules: str) -> dict[str, Any]:
    payload = copy.deepcopy(payload)
    for alert in payload["alerts"]:
        if alert["labels"]["alertname"] in rules:
            alert["status"] = "resolved"
    if all(a["status"] == "resolved" for a in payload["alerts"]):
        payload["status"] = "resolved"
    return payload


def test_the_grafana_documentation_sample_is_firing_so_it_is_ignored():
    assert isinstance(run(grafana("High CPU usage", {}), sample("grafana-webhook.json")), Ignored)


def test_a_resolved_grafana_alert_of_the_named_rule_triggers_with_its_exact_values():
    payload = resolved(sample("grafana-webhook.json"), "High CPU usage")
    mapped = run(grafana("High CPU usage", {"cpu_pct": "B", "zone_count": "C"}), payload)
    assert mapped == Mapped(
        milestone="phase-2",
        key=None,
        trigger={
            # 44.23943737541908 in the payload, never through a binary float
            "kpis": {"cpu_pct": "44.23943737541908", "zone_count": "1"},
            "external_ref": "bc97ff14869b13e3",
            "note": "This alert was triggered for zone eu-1",
        },
    )


def test_a_resolved_grafana_alert_of_another_rule_is_ignored():
    payload = resolved(sample("grafana-webhook.json"), "High memory usage")
    assert isinstance(run(grafana("High CPU usage", {"cpu_pct": "B"}), payload), Ignored)


GENERIC = build_mapping(SourceIn(kind="generic", name="CI"))


def test_the_generic_preset_takes_tollgates_own_trigger_json_with_a_milestone_key():
    payload = parsed(
        '{"milestone": "phase-2", "completion_percent": "50", "kpis": {"error_rate_pct": 0.4},'
        ' "external_ref": "JIRA-9", "note": "half way"}'
    )
    assert run(GENERIC, payload) == Mapped(
        milestone="phase-2",
        key=None,
        trigger={
            "kpis": {"error_rate_pct": "0.4"},
            "completion_percent": "50",
            "external_ref": "JIRA-9",
            "note": "half way",
        },
    )
    assert run(GENERIC, {"milestone": "phase-1"}) == Mapped("phase-1", None, {"kpis": {}})


@pytest.mark.parametrize(
    ("json_number", "text"),
    [
        ("99.95", "99.95"),
        ("0.1", "0.1"),
        ("99.950", "99.950"),
        ("1E+2", "100"),
        ("2.5e-7", "0.00000025"),
        ("12", "12"),
        ("-0.0001", "-0.0001"),
    ],
)
def test_a_number_in_the_payload_becomes_exactly_its_json_text_without_an_exponent(
    json_number: str, text: str
):
    mapping = {"milestone": "'phase-1'", "kpis": {"uptime": "report.uptime"}}
    mapped = run(mapping, parsed(f'{{"report": {{"uptime": {json_number}}}}}'))
    assert isinstance(mapped, Mapped)
    assert mapped.trigger["kpis"] == {"uptime": text}


def test_number_literals_and_functions_in_expressions_stay_exact():
    mapping = {
        "milestone": "'phase-1'",
        "when": "uptime >= `99.9`",
        "kpis": {
            "mean": "avg(samples)",
            "total": "sum(samples)",
            "best": "max(samples)",
            "parsed": "to_number(text)",
        },
        "note": "to_string(uptime)",
    }
    payload = parsed('{"uptime": 99.9, "samples": [0.1, 0.2, 0.3], "text": "0.30"}')
    mapped = run(mapping, payload)
    assert isinstance(mapped, Mapped)  # 99.9 >= 99.9 exactly, not against a binary 99.9
    assert mapped.trigger["kpis"] == {
        "mean": "0.2",
        "total": "0.6",
        "best": "0.3",
        "parsed": "0.30",
    }
    assert mapped.trigger["note"] == "99.9"


@pytest.mark.parametrize(
    ("value", "reason"),
    [("true", "true"), ("null", "null"), ('{"a": 1}', "an object"), ('"high"', "'high'")],
)
def test_a_kpi_that_is_not_a_number_is_a_mapping_failure(value: str, reason: str):
    mapping = {"milestone": "'phase-1'", "kpis": {"uptime": "uptime"}}
    with pytest.raises(MappingFailed) as failed:
        run(mapping, parsed(f'{{"uptime": {value}}}'))
    assert (failed.value.field, failed.value.expression) == ("kpis.uptime", "uptime")
    assert reason in failed.value.reason


def test_a_falsy_when_ignores_the_payload_and_says_why():
    mapping = {"milestone": "'phase-1'", "when": "status == 'done'"}
    ignored = run(mapping, {"status": "in progress"})
    assert ignored == Ignored("when \"status == 'done'\" evaluated to false")
    assert isinstance(run(mapping, {"status": "done"}), Mapped)


@pytest.mark.parametrize("verdict", ["null", "false", '""', "[]", "{}"])
def test_every_jmespath_falsy_value_ignores(verdict: str):
    mapping = {"milestone": "'phase-1'", "when": "verdict"}
    assert isinstance(run(mapping, parsed(f'{{"verdict": {verdict}}}')), Ignored)


def test_the_milestone_and_idempotency_key_come_from_the_payload():
    mapping = {"milestone": "issue.fields.milestone", "idempotency_key": "issue.key"}
    mapped = run(mapping, {"issue": {"key": "OPS-7", "fields": {"milestone": "phase-3"}}})
    assert mapped == Mapped("phase-3", "OPS-7", {"kpis": {}})


@pytest.mark.parametrize(
    ("mapping", "field"),
    [
        ({"milestone": "missing"}, "milestone"),
        ({"milestone": "'phase-1'", "idempotency_key": "missing"}, "idempotency_key"),
        ({"milestone": "'phase-1'", "note": "tags"}, "note"),
        ({"milestone": "'phase-1'", "kpi_object": "tags"}, "kpi_object"),
        ({"milestone": "'phase-1'", "completion_percent": "tags"}, "completion_percent"),
        ({"milestone": "'phase-1'", "kpis": {"x": "abs(name)"}}, "kpis.x"),
    ],
)
def test_a_mapping_that_fails_on_a_payload_names_the_field_and_expression(mapping, field):
    with pytest.raises(MappingFailed) as failed:
        run(mapping, {"tags": ["a"], "name": "x"})
    assert failed.value.field == field


@pytest.mark.parametrize(
    ("mapping", "loc", "message"),
    [
        ({"milestone": "a["}, ("milestone",), "Incomplete expression"),
        ({"milestone": "'x'", "when": "status =="}, ("when",), "Invalid jmespath expression"),
        ({"milestone": "'x'", "kpis": {"up": "nope(a)"}}, ("kpis", "up"), "unknown function nope"),
        ({"milestone": "'x'", "note": "length(a, b)"}, ("note",), "length() takes 1 argument"),
        ({"milestone": "`1"}, ("milestone",), "Unclosed ` delimiter"),
        ({"milestone": ""}, ("milestone",), "at least 1 character"),
    ],
)
def test_a_bad_expression_is_refused_at_registration_with_the_parsers_message(
    mapping, loc, message
):
    with pytest.raises(ValidationError) as refused:
        SourceIn(kind="mapping", name="bad", mapping=mapping)
    error = refused.value.errors()[0]
    assert error["loc"] == ("mapping", *loc)
    assert message in error["msg"]


def test_a_fixed_milestone_is_known_at_registration():
    assert fixed_milestone(MappingIn(milestone="'phase-1'")) == "phase-1"
    assert fixed_milestone(MappingIn(milestone="milestone")) is None
    assert fixed_milestone(ALERTMANAGER) == "phase-1"


@pytest.mark.parametrize("name", ["it's", 'say "hi"', "back\\slash", "tick`"])
def test_preset_names_cannot_break_out_of_their_expressions(name: str):
    with pytest.raises(ValidationError):
        SourceIn(kind="alertmanager", name="x", alertname=name, milestone="phase-1")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "alertmanager", "milestone": "phase-1"}, "alertname"),
        ({"kind": "grafana", "rule": "Uptime"}, "milestone"),
        ({"kind": "mapping"}, "mapping"),
        ({"kind": "generic", "milestone": "phase-1"}, "milestone"),
        ({"kind": "alertmanager", "alertname": "A", "milestone": "p", "rule": "R"}, "rule"),
    ],
)
def test_a_preset_without_its_options_or_with_anothers_is_refused(body, field):
    with pytest.raises(Problem) as refused:
        build_mapping(SourceIn(name="x", **body))
    assert refused.value.status == 422
    assert refused.value.errors == [{"field": field, "message": refused.value.detail}]
