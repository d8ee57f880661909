"""A dependency that times out or throttles past the SDK's retries makes the API answer 503
with Retry-After, which tells a client to send the same request again, instead of a 500."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from crm.errors import Unavailable
from crm.segments.store import SegmentStore
from crm_local.harness import Suite


def test_a_read_timeout_or_throttling_is_a_503_with_retry_after(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    def timed_out(self: SegmentStore, limit: int) -> Any:
        raise ReadTimeoutError(endpoint_url="http://127.0.0.1:4566/")

    monkeypatch.setattr(SegmentStore, "complete_runs", timed_out)
    out = suite.call("GET", "/segments", role="analyst")
    assert out.status == 503
    assert out.headers["Retry-After"] == "5"
    assert out.body == {"error": {"code": "unavailable",
                                  "message": "a service this request needs is busy; try again "
                                             "shortly"}}  # fmt: skip

    def throttled(self: SegmentStore, limit: int) -> Any:
        error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}}
        raise ClientError(error, "Query")  # type: ignore[arg-type]

    monkeypatch.setattr(SegmentStore, "complete_runs", throttled)
    assert suite.call("GET", "/segments", role="analyst").status == 503


def test_other_failures_are_not_disguised_as_busy(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: SegmentStore, limit: int) -> Any:
        error = {"Error": {"Code": "ValidationException", "Message": "bad key"}}
        raise ClientError(error, "Query")  # type: ignore[arg-type]

    monkeypatch.setattr(SegmentStore, "complete_runs", broken)
    assert suite.call("GET", "/segments", role="analyst").status == 500


def test_a_service_that_says_it_is_unavailable_gets_retry_after_too(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As the analytics family says of an Athena query still running past the API's wait.
    def computing(self: SegmentStore, limit: int) -> Any:
        raise Unavailable("the metric is still being computed; ask again in a few seconds")

    monkeypatch.setattr(SegmentStore, "complete_runs", computing)
    out = suite.call("GET", "/segments", role="analyst")
    assert (out.status, out.headers["Retry-After"]) == (503, "5")
    assert out.body["error"]["message"].startswith("the metric is still being computed")
