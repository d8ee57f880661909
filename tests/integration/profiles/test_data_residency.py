"""One stack per data region: a customer of another region is refused with 421 naming where it
belongs, before anything is stored or queued; the stack's own customers carry its region."""

from __future__ import annotations

import pytest

from crm_local.harness import Suite
from tests.integration.profiles.test_event_intake import new_customer, queued, viewed


def test_a_customer_of_another_region_is_refused_and_nothing_is_stored(suite: Suite) -> None:
    body = {"identities": [{"channel": "app", "external_id": "eu-1"}],
            "attributes": {"phone": "13700002222"}, "residency": "eu"}  # fmt: skip
    refused = suite.call("POST", "/customers", body)
    assert refused.status == 421
    error = refused.body["error"]
    assert error["code"] == "wrong_data_region"
    assert "eu region's API" in error["message"]
    assert error["fields"] == [
        {"field": "residency", "message": "belongs to the eu data region, not cn"}
    ]
    # Nothing was claimed: the same identities create a cn customer afterwards.
    created = suite.call("POST", "/customers", {**body, "residency": "cn"})
    assert (created.status, created.body["created"]) == (201, True)
    assert created.body["profile"]["residency"] == "cn"


def test_customers_carry_the_stack_region(suite: Suite) -> None:
    cid = new_customer(suite, "cn-1")  # no residency given: this stack's own
    assert suite.call("GET", f"/customers/{cid}").body["residency"] == "cn"


@pytest.mark.parametrize("region", ["eu", "us"])
def test_events_for_another_region_are_refused_all_or_nothing(suite: Suite, region: str) -> None:
    cid = new_customer(suite, f"ev-{region}")
    events = [viewed(cid, "r-1"), {**viewed(cid, "r-2"), "residency": region},
              {**viewed(cid, "r-3"), "residency": "cn"}]  # fmt: skip
    refused = suite.call("POST", "/events", {"events": events})
    assert refused.status == 421
    assert refused.body["error"]["fields"] == [
        {"field": "events.1.residency", "message": f"belongs to the {region} data region, not cn"}
    ]
    assert queued(suite) == 0
    accepted = suite.call("POST", "/events", {"events": [events[0], events[2]]})
    assert accepted.status == 202


def test_an_unknown_region_is_a_400(suite: Suite) -> None:
    body = {"identities": [{"channel": "app", "external_id": "mars-1"}], "residency": "mars"}
    refused = suite.call("POST", "/customers", body)
    assert refused.status == 400
    assert refused.body["error"]["fields"][0]["field"] == "residency"
