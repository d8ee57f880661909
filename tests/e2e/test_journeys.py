"""The shipped journeys on the emulator with time travel: the demo loader stores and
activates them, a customer's events enter them, `crm-local clock advance` moves their waits on,
and the recording provider's outbox shows what was sent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from crm.campaigns.policy import ContactPolicy
from crm_local.seed import ApiClient, load_journeys
from crm_local.template import ROOT
from tests.e2e.conftest import Running, start_emulator, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("journeys")
    with start_emulator(ROOT / "template.yaml", folder / "state") as running:
        yield running


def journeys_by_name(emulator: Running, admin: str) -> dict[str, str]:
    status, listing = emulator.http("GET", "/campaigns/journeys", token=admin)
    assert status == 200, listing
    return {j["definition"]["name"]: j["journey_id"] for j in listing["journeys"]}


def customer(emulator: Running, admin: str, key: str) -> str:
    body: dict[str, Any] = {"identities": [{"channel": "app", "external_id": key}],
            "attributes": {"name": "李四", "email": f"{key}@shop.example.com"}}  # fmt: skip
    policy = ContactPolicy()
    for n in range(50):  # outside the global control group, which dispatch never sends to
        body["identities"][0]["external_id"] = f"{key}-{n}"
        # The email is an identity too: the same one would find the customer just made.
        body["attributes"]["email"] = f"{key}-{n}@shop.example.com"
        status, reply = emulator.http("POST", "/customers", body, token=admin)
        assert status == 201, reply
        cid = str(reply["customer_id"])
        if not policy.in_global_control(cid):
            break
    for purpose in ("marketing_push", "marketing_email"):
        change = {"purpose": purpose, "granted": True, "source": "app"}
        status, reply = emulator.http("PUT", f"/customers/{cid}/consent", change, token=admin)
        assert status == 200, reply
    return cid


def event(emulator: Running, admin: str, cid: str, kind: str, n: int) -> None:
    now = datetime.now(UTC)  # the emulator's clock is ahead, never behind: not in its future
    body: dict[str, Any] = {"event_id": f"{cid}-{n}", "type": kind, "customer_id": cid,
                            "occurred_at": now.isoformat().replace("+00:00", "Z")}  # fmt: skip
    if kind == "order_paid":
        body.update(order_id=f"{cid}-o{n}", amount="88.00")
    else:
        body.update(sku="tea-1")
    status, reply = emulator.http("POST", "/events", {"events": [body]}, token=admin)
    assert status == 202, reply


def instance(emulator: Running, admin: str, journey_id: str, cid: str) -> dict[str, Any] | None:
    status, reply = emulator.http(
        "GET", f"/campaigns/journeys/{journey_id}/customers/{cid}", token=admin
    )
    assert status == 200, reply
    return reply["instances"][-1] if reply["instances"] else None


def outbox(emulator: Running, admin: str, cid: str, journey_id: str) -> list[dict[str, Any]]:
    status, reply = emulator.http(
        "GET", f"/campaigns/outbox?customer_id={cid}&campaign_id={journey_id}", token=admin
    )
    assert status == 200, reply
    return list(reply["entries"])


def sent_after(emulator: Running, admin: str, cid: str, journey_id: str) -> list[dict[str, Any]]:
    """What the journey sent once its wait is over. Dispatch defers a message that falls in
    quiet hours (21:00-09:00 the customer's time) to the morning, so the clock moves on a few
    hours at a time until it went out."""
    wait_for(lambda: (instance(emulator, admin, journey_id, cid) or {}).get("state")
             == "completed", timeout=90)  # fmt: skip
    for _ in range(5):
        try:
            return list(wait_for(lambda: outbox(emulator, admin, cid, journey_id), timeout=20))
        except AssertionError:
            emulator.cli("clock", "advance", "4h")
    raise AssertionError(f"nothing sent: {report(emulator, admin, journey_id)}")


def report(emulator: Running, admin: str, journey_id: str) -> Any:
    return emulator.http("GET", f"/campaigns/journeys/{journey_id}/report", token=admin)[1]


def test_the_demo_loader_activates_the_seven_examples_once(emulator: Running) -> None:
    admin = emulator.token("admin")
    client = ApiClient(emulator.api, admin)
    assert load_journeys(client) == 7
    assert load_journeys(client) == 0  # seeding again loads nothing twice
    assert len(journeys_by_name(emulator, admin)) == 7


def test_abandoned_cart_two_hours_then_a_reminder(emulator: Running) -> None:
    admin = emulator.token("admin")
    load_journeys(ApiClient(emulator.api, admin))
    journey_id = journeys_by_name(emulator, admin)["abandoned cart 2 h -> reminder"]
    cid = customer(emulator, admin, "e2e-cart")
    event(emulator, admin, cid, "cart_added", 1)
    wait_for(lambda: (instance(emulator, admin, journey_id, cid) or {}).get("state")
             == "waiting", timeout=60)  # fmt: skip
    emulator.cli("clock", "advance", "2h")
    sent = sent_after(emulator, admin, cid, journey_id)
    assert [(m["channel"], "#reminder#" in m["dispatch_key"]) for m in sent] == [("push", True)]


def test_seven_days_after_the_first_order_a_cross_sell(emulator: Running) -> None:
    admin = emulator.token("admin")
    load_journeys(ApiClient(emulator.api, admin))
    journey_id = journeys_by_name(emulator, admin)["7 days after the first order -> cross-sell"]
    cid = customer(emulator, admin, "e2e-first")
    event(emulator, admin, cid, "order_paid", 1)
    waiting = wait_for(lambda: (instance(emulator, admin, journey_id, cid) or {}).get("state")
                       == "waiting", timeout=60)  # fmt: skip
    assert waiting
    assert instance(emulator, admin, journey_id, cid)["step"] == "wait_7d"  # type: ignore[index]
    emulator.cli("clock", "advance", "7d")
    sent = sent_after(emulator, admin, cid, journey_id)
    assert [(m["channel"], "#cross_sell#" in m["dispatch_key"]) for m in sent] == [("email", True)]
