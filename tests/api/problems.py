"""The one check every refused request must pass: a problem+json body, never a traceback."""

import httpx


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    assert "Traceback" not in response.text
    if field is not None:
        assert any(e["field"].startswith(field) for e in body["errors"]), body
    return body
