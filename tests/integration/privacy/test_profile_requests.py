"""Consent withdrawal, restriction and rectification: carried out on the profile through the
profiles family's own use cases, and respected by campaigns (a journey's scheduled send after
the request is suppressed)."""

from __future__ import annotations

import boto3

from crm.composition import root
from crm.privacy.profile_actions import ProfilesActions
from crm.privacy.records import request_key
from tests.integration.journeys.conftest import RealShop, real_shop  # noqa: F401 - a fixture
from tests.integration.journeys.test_journeys_dispatch import sms


def _file(shop: RealShop, cid: str, kind: str, **extra: object) -> str:
    reply = shop.suite.call("POST", "/privacy/requests", {"customer_id": cid, "kind": kind,
                            **extra}, role="customer", customer_id=cid)  # fmt: skip
    assert reply.status == 201, reply.body
    assert reply.body["status"] == "running"
    return str(reply.body["request_id"])


def _work(shop: RealShop) -> None:
    shop.suite.drain("PrivacyWorkerFunction", "PrivacyQueue")


def _request(shop: RealShop, rid: str) -> dict[str, object]:
    reply = shop.suite.call("GET", f"/privacy/requests/{rid}", role="privacy_officer")
    assert reply.status == 200, reply.body
    body: dict[str, object] = reply.body
    return body


def test_a_withdrawal_suppresses_the_journey_send_already_scheduled(real_shop: RealShop) -> None:  # noqa: F811
    shop = real_shop
    journey_id = shop.journey(sms(shop.example("abandoned cart")))
    cid = shop.consenting("withdraw")
    shop.event(cid, "cart_added")  # the reminder waits two hours
    rid = _file(shop, cid, "consent_withdrawal")
    _work(shop)
    view = _request(shop, rid)
    assert view["status"] == "completed"
    consent = shop.suite.call("GET", f"/customers/{cid}", role="support_agent").body["consent"]
    assert consent["marketing_sms"]["granted"] is False
    assert all(not state["granted"] for state in consent.values())

    shop.advance(hours=2, minutes=1)
    assert shop.outbox(cid) == []
    assert shop.report(journey_id)["steps"]["reminder"]["suppressed"] == 1


def test_withdrawing_named_purposes_keeps_the_others(real_shop: RealShop) -> None:  # noqa: F811
    shop = real_shop
    cid = shop.consenting("named")
    change = {"purpose": "marketing_email", "granted": True, "source": "app"}
    assert shop.suite.call("PUT", f"/customers/{cid}/consent", change).status == 200
    _file(shop, cid, "consent_withdrawal", purposes=["marketing_email"])
    _work(shop)
    consent = shop.suite.call("GET", f"/customers/{cid}", role="support_agent").body["consent"]
    assert consent["marketing_email"]["granted"] is False
    assert consent["marketing_sms"]["granted"] is True


def test_a_restricted_customer_receives_no_marketing(real_shop: RealShop) -> None:  # noqa: F811
    shop = real_shop
    journey_id = shop.journey(sms(shop.example("abandoned cart")))
    cid = shop.consenting("restrict")
    shop.event(cid, "cart_added")
    rid = _file(shop, cid, "restriction")
    _work(shop)
    assert _request(shop, rid)["status"] == "completed"
    shop.advance(hours=2, minutes=1)
    assert shop.outbox(cid) == []  # consent is still given: the restriction alone holds it back
    assert shop.report(journey_id)["steps"]["reminder"]["suppressed"] == 1


def test_a_rectification_filed_by_an_agent_applies_after_the_customer_confirms(
    real_shop: RealShop,  # noqa: F811
) -> None:
    shop = real_shop
    cid = shop.customer("rectify", name="张三", phone="+8613900000009")
    body = {"customer_id": cid, "kind": "rectification", "changes": {"name": "李四"}}
    filed = shop.suite.call("POST", "/privacy/requests", body, role="support_agent")
    assert filed.status == 201, filed.body
    rid = filed.body["request_id"]
    assert filed.body["status"] == "awaiting_confirmation"
    _work(shop)
    agent_view = shop.suite.call("GET", f"/customers/{cid}", role="support_agent").body
    assert agent_view["attributes"]["name"] == "张三"  # nothing before the confirmation

    # The changes are sealed under the customer's key while the request waits.
    table = shop.suite.stack.refs["PrivacyTable"]
    item = boto3.client("dynamodb").get_item(
        TableName=table, Key={k: {"S": v} for k, v in request_key(rid).items()}
    )["Item"]
    assert "李四" not in str(item)

    confirmed = shop.suite.call("POST", f"/privacy/requests/{rid}/confirm", None,
                                role="customer", customer_id=cid)  # fmt: skip
    assert confirmed.status == 200, confirmed.body
    _work(shop)
    view = _request(shop, rid)
    assert view["status"] == "completed"
    assert view["steps"] == [{"store": "profiles", "state": "done", "attempts": 1, "error": None,
                              "counts": {"name": 1}, "holdings": []}]  # fmt: skip
    agent_view = shop.suite.call("GET", f"/customers/{cid}", role="support_agent").body
    assert agent_view["attributes"]["name"] == "李四"


def test_a_retried_withdrawal_step_records_each_decision_once(real_shop: RealShop) -> None:  # noqa: F811
    """The step succeeded but its message came back (the worker died before recording it):
    run again, it finds its ledger entries by their deterministic keys and writes none."""
    shop = real_shop
    cid = shop.consenting("retried")
    rid = _file(shop, cid, "consent_withdrawal", purposes=["marketing_sms"])
    _work(shop)
    assert _request(shop, rid)["status"] == "completed"
    service = root().profile_service

    def decisions() -> list[tuple[str, object, object]]:
        entries, _ = service.store.entries("CNS", cid, 100)
        return sorted((e.key, e.body["purpose"], e.body["granted"]) for e in entries)

    once = decisions()
    withdrawn = [d for d in once if d[1] == "marketing_sms" and d[2] is False]
    assert withdrawn == [(f"consent:privacy:{rid}:marketing_sms", "marketing_sms", False)]
    actions = ProfilesActions(root().profiles)
    for _ in range(2):
        again = actions.withdraw_consent(cid, ["marketing_sms"], "privacy_request", rid)
        assert again == ["marketing_sms"]
    assert decisions() == once
    consent = shop.suite.call("GET", f"/customers/{cid}", role="support_agent").body["consent"]
    assert consent["marketing_sms"]["granted"] is False
