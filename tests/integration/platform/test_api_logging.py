"""The API's access log carries the Lambda request id and a correlation id, never a body; the
correlation id and CORS headers come back on the response."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from crm_local.harness import Suite


@pytest.fixture
def api_log(suite: Suite) -> Iterator[io.StringIO]:
    """What the API function's logger writes (its handler keeps the stream it was made with,
    so it is pointed at a buffer rather than captured from stdout)."""
    suite.call("GET", "/openapi.json", role=None)  # the function's container exists now
    buffer = io.StringIO()
    handlers = [h for h in logging.getLogger("crm-api").handlers
                if isinstance(h, logging.StreamHandler)]  # fmt: skip
    assert handlers
    previous = [h.setStream(buffer) for h in handlers]
    try:
        yield buffer
    finally:
        for handler, stream in zip(handlers, previous, strict=True):
            if stream is not None:
                handler.setStream(stream)


def requests_in(log: io.StringIO) -> list[dict[str, object]]:
    lines = [json.loads(x) for x in log.getvalue().splitlines() if x.startswith("{")]
    return [line for line in lines if line.get("message") == "request"]


def test_each_request_is_logged_with_its_request_and_correlation_ids(
    suite: Suite, api_log: io.StringIO
) -> None:
    body = {"identities": [{"channel": "app", "external_id": "log-1"}],
            "attributes": {"phone": "13912345678"}}  # fmt: skip
    out = suite.call("POST", "/customers", body, headers={"X-Correlation-Id": "order-flow-7"})
    assert out.status == 201
    assert out.headers["X-Correlation-Id"] == "order-flow-7"
    requests = requests_in(api_log)
    assert len(requests) == 1
    entry = requests[0]
    assert entry["correlation_id"] == "order-flow-7"
    assert entry["function_request_id"]
    assert entry["status"] == 201
    assert entry["route"] == "/customers"
    assert "13912345678" not in api_log.getvalue()


def test_without_a_correlation_header_the_gateway_request_id_is_used(
    suite: Suite, api_log: io.StringIO
) -> None:
    out = suite.call("GET", "/customers/nobody")
    assert out.status == 404
    (entry,) = requests_in(api_log)
    assert entry["correlation_id"] == out.headers["X-Correlation-Id"]


def test_responses_carry_the_allowed_origin(suite: Suite, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ALLOW_ORIGIN", "https://shop.example.com,https://m.example.com")
    allowed = suite.call("GET", "/customers/nobody", headers={"Origin": "https://m.example.com"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://m.example.com"
    other = suite.call("GET", "/customers/nobody", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    monkeypatch.setenv("CORS_ALLOW_ORIGIN", "*")
    assert suite.call("GET", "/customers/nobody").headers["Access-Control-Allow-Origin"] == "*"
