"""A client app against `crm-local up`: over HTTP, with tokens, events folded by the pump."""

from __future__ import annotations

import json
from typing import Any

import pytest

from crm_local.template import ROOT
from tests.e2e.conftest import Running, wait_for

pytestmark = pytest.mark.e2e


def test_create_a_customer_send_events_and_see_them_folded(emulator: Running) -> None:
    admin = emulator.token("admin")
    status, created = emulator.http(
        "POST",
        "/customers",
        {"identities": [{"channel": "mini_program", "external_id": "oE2E"}],
         "attributes": {"name": "林小雨", "phone": "13912345678"}},
        admin,
    )  # fmt: skip
    assert status == 201
    cid = created["customer_id"]
    events = [
        {"event_id": "e2e-1", "type": "order_paid", "order_id": "e2e-o1", "customer_id": cid,
         "amount": "268.00", "occurred_at": "2026-11-20T12:00:00+08:00",
         "items": [{"sku": "milk-powder-3", "category": "母婴", "quantity": 1,
                    "unit_price": "268.00"}]},
        {"event_id": "e2e-2", "type": "product_viewed", "customer_id": cid, "sku": "diapers-l",
         "occurred_at": "2026-11-21T08:00:00+08:00"},
    ]  # fmt: skip
    status, accepted = emulator.http("POST", "/events", {"events": events}, admin)
    assert (status, accepted["accepted"]) == (202, 2)

    marketer = emulator.token("marketer")

    # The view reads the profile, then the timeline index (eventually consistent in AWS): a
    # fold landing between the two reads shows in one and not yet in the other. Wait for both.
    def folded() -> dict[str, Any] | None:
        _, view = emulator.http("GET", f"/customers/{cid}", token=marketer)
        both = len(view["timeline"]) == 2 and view["behaviour"]["view_count"] == 1
        return view if both else None

    view = wait_for(folded)
    assert view["orders"]["total_spend"] == "268.00"
    assert view["attributes"]["phone"] == "139****5678"
    assert view["orders"]["order_count"] == 1


def test_the_gateway_plays_the_authorizer(emulator: Running) -> None:
    status, body = emulator.http("GET", "/customers/anyone")
    assert (status, body["error"]["code"]) == (401, "unauthorized")  # template.yaml's shape
    assert emulator.http("GET", "/customers/anyone", token="not.a.token")[0] == 401
    assert emulator.http("GET", "/nowhere", token=emulator.token("admin"))[0] == 403
    assert emulator.http("GET", "/openapi.json")[0] == 200  # the one public route


def test_a_customer_token_reads_only_its_own_profile(emulator: Running) -> None:
    admin = emulator.token("admin")
    _, mine = emulator.http(
        "POST", "/customers", {"identities": [{"channel": "app", "external_id": "e2e-me"}]}, admin
    )
    _, other = emulator.http(
        "POST", "/customers", {"identities": [{"channel": "app", "external_id": "e2e-x"}]}, admin
    )
    me = emulator.token("customer", mine["customer_id"])
    assert emulator.http("GET", f"/customers/{mine['customer_id']}", token=me)[0] == 200
    assert emulator.http("GET", f"/customers/{other['customer_id']}", token=me)[0] == 403


def test_invoke_runs_one_function_once(emulator: Running) -> None:
    out = json.loads(emulator.cli("invoke", "ApiFunction", "--event",
                                  str(ROOT / "events" / "api_get_openapi.json")))  # fmt: skip
    assert out["statusCode"] == 200
    assert json.loads(out["body"])["openapi"].startswith("3.")
