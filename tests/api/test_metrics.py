"""``GET /metrics``: what Prometheus scrapes from the API, over real HTTP on both databases."""

from prometheus_client.parser import text_string_to_metric_families

from tests.api.problems import assert_problem
from tests.conftest_stack import Example, Stack


async def scrape(stack: Stack) -> dict[tuple[str, frozenset], float]:
    response = await stack.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(metrics: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float:
    return metrics.get((name, frozenset(labels.items())), 0)


async def test_requests_are_counted_by_route_template_and_status_with_their_latency(
    example: Example,
):
    stack = example.stack
    before = await scrape(stack)
    for run_id in ("run-nope", "milestone:eng_nope:phase-1:0123456789ab"):
        assert (await stack.get(f"/v1/runs/{run_id}")).status_code == 404

    after = await scrape(stack)

    route = {"method": "GET", "route": "/v1/runs/{run_id}"}
    counted = "tollgate_http_requests_total"
    assert (
        value(after, counted, **route, status="404") - value(before, counted, **route, status="404")
        == 2
    )
    latency = "tollgate_http_request_duration_seconds_count"
    assert value(after, latency, **route) - value(before, latency, **route) == 2
    assert not any("eng_nope" in str(labels) for _, labels in after)  # no series per id


async def test_a_billed_run_counts_as_started_and_billed_and_adds_its_gross_to_its_currency(
    example: Example,
):
    stack = example.stack
    before = await scrape(stack)
    run_id = (await example.trigger("phase-1")).json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")
    during = await scrape(stack)
    await example.decide(run_id, "delivery_lead", "lead")
    await example.decide(run_id, "client_ap", "client")
    await example.wait_for_stage(run_id, "billed")

    after = await scrape(stack)

    def grew(name: str, metrics: dict, **labels: str) -> float:
        return value(metrics, name, **labels) - value(before, name, **labels)

    assert grew("tollgate_runs_started_total", after, kind="milestone") == 1
    assert value(during, "tollgate_runs_open", kind="milestone", stage="awaiting_approval") >= 1
    assert grew("tollgate_runs_ended_total", after, kind="milestone", stage="billed") == 1
    assert grew("tollgate_billed_minor_total", after, currency="USD") == 3_000_000
    assert value(after, "tollgate_books_up") == 1


async def test_a_cancelled_run_counts_as_cancelled(example: Example):
    stack = example.stack
    before = await scrape(stack)
    run_id = (await example.trigger("phase-1")).json()["run_id"]
    await example.wait_for_stage(run_id, "awaiting_approval")
    cancelled = await stack.post(f"/v1/runs/{run_id}/cancel", {"reason": "Triggered by mistake"})
    assert cancelled.status_code == 200, cancelled.text

    after = await scrape(stack)

    ended = {"kind": "milestone", "stage": "cancelled"}
    assert (
        value(after, "tollgate_runs_ended_total", **ended)
        - value(before, "tollgate_runs_ended_total", **ended)
        == 1
    )


async def test_metrics_are_for_admins_only(example: Example):
    stack = example.stack
    assert_problem(await stack.http.get("/metrics"), 401)
    assert_problem(await stack.get("/metrics", example.token("lead")), 403)
