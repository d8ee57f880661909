"""A customer with orders, a ticket, a campaign message (the abandoned-cart journey's push,
sent after `crm-local clock advance`) and lake rows asks to be erased over the emulator's HTTP
gateway: their access bundle lists the message first; a privacy officer approves, the worker
erases store by store through PrivacyQueue, and the request comes back completed with every
store's verification, the campaigns store's included, and the recording provider's outbox (kept
in CampaignsTable, `OUTBOX#<customer>`) empty. An access request's bundle is downloaded with
its presigned URL. The audit chain verifies, by route and command."""

from __future__ import annotations

import io
import json
import urllib.request
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from crm_local.seed import ApiClient, load_journeys
from crm_local.template import ROOT
from tests.e2e.conftest import Running, start_emulator, wait_for
from tests.e2e.test_journeys import customer, event, instance, journeys_by_name, sent_after

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with start_emulator(ROOT / "template.yaml", tmp_path_factory.mktemp("privacy")) as running:
        yield running


def _customer(office: Running, key: str, phone: str) -> str:
    admin = office.token("admin")
    status, created = office.http("POST", "/customers", {
        "identities": [{"channel": "mini_program", "external_id": f"openid-e2e-{key}"}],
        "attributes": {"name": "王五", "phone": phone},
    }, token=admin)  # fmt: skip
    assert status == 201, created
    cid: str = created["customer_id"]
    order = {"event_id": f"o-{key}-paid", "type": "order_paid", "customer_id": cid,
             "order_id": f"o-{key}", "amount": "199.00",
             "occurred_at": "2026-11-20T10:00:00+08:00"}  # fmt: skip
    assert office.http("POST", "/events", {"events": [order]}, token=admin)[0] == 202
    wait_for(lambda: office.http("GET", f"/customers/{cid}", token=admin)[1]["orders"]
             ["order_count"] == 1, timeout=60)  # fmt: skip
    return cid


def _bundle(office: Running, rid: str, token: str) -> dict[str, bytes]:
    status, link = office.http("GET", f"/privacy/requests/{rid}/export", token=token)
    assert status == 200, link
    with urllib.request.urlopen(link["url"], timeout=30) as response:  # noqa: S310 - 127.0.0.1
        data = response.read()
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        return {name: bundle.read(name) for name in bundle.namelist()}


def _campaign_message(office: Running, admin: str) -> tuple[str, str]:
    """A customer who was sent the abandoned-cart journey's push (the recording provider's
    outbox holds it) and paid an order: their id and the journey's."""
    load_journeys(ApiClient(office.api, admin))
    journey_id = journeys_by_name(office, admin)["abandoned cart 2 h -> reminder"]
    cid = customer(office, admin, "e2e-privacy-cart")
    event(office, admin, cid, "cart_added", 1)
    wait_for(lambda: (instance(office, admin, journey_id, cid) or {}).get("state")
             == "waiting", timeout=60)  # fmt: skip
    office.cli("clock", "advance", "2h")
    sent = sent_after(office, admin, cid, journey_id)
    assert [m["channel"] for m in sent] == ["push"]
    event(office, admin, cid, "order_paid", 2)
    wait_for(lambda: office.http("GET", f"/customers/{cid}", token=admin)[1]["orders"]
             ["order_count"] == 1, timeout=60)  # fmt: skip
    return cid, journey_id


def _completed(office: Running, rid: str, token: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        view: dict[str, Any] = office.http("GET", f"/privacy/requests/{rid}", token=token)[1]
        return view if view.get("status") == "completed" else None

    found: dict[str, Any] = wait_for(done, timeout=120, every=1)
    return found


def test_an_approved_erasure_completes_with_every_stores_proof(office: Running) -> None:
    admin = office.token("admin")
    cid, journey_id = _campaign_message(office, admin)
    customer_token = office.token("customer", cid)
    status, ticket = office.http("POST", "/tickets", {
        "customer_id": cid, "channel": "app", "order_id": f"{cid}-o2",
        "message": "请删除我的账户和所有数据",
    }, token=customer_token)  # fmt: skip
    assert status == 201, ticket

    # Before: the access bundle lists the campaign message the customer received.
    access = {"customer_id": cid, "kind": "access"}
    status, filed = office.http("POST", "/privacy/requests", access, token=customer_token)
    assert status == 201, filed
    _completed(office, filed["request_id"], customer_token)
    bundle = _bundle(office, filed["request_id"], customer_token)
    messages = json.loads(bundle["campaigns/campaign_messages.json"])
    assert (journey_id, "push", "sent") in [
        (m["campaign_id"], m["channel"], m["state"]) for m in messages
    ], messages

    erasure = {"customer_id": cid, "kind": "erasure"}
    status, filed = office.http("POST", "/privacy/requests", erasure, token=customer_token)
    assert status == 201, filed
    assert filed["status"] == "awaiting_approval"
    officer = office.token("privacy_officer")
    rid = filed["request_id"]
    status, approved = office.http("POST", f"/privacy/requests/{rid}/approve",
                                   {"reason": "verified_identity"}, token=officer)  # fmt: skip
    assert status == 200, approved

    view = _completed(office, rid, officer)
    assert {s["state"] for s in view["steps"]} == {"done"}
    campaigns = next(s for s in view["steps"] if s["store"] == "campaigns")
    # The dispatch ledger's message and the recording provider's outbox entry were erased.
    assert campaigns["counts"].get("message", 0) >= 1, campaigns
    assert campaigns["counts"].get("outbox", 0) >= 1, campaigns
    assert view["proof"], view
    assert {p["store"] for p in view["proof"]} == {s["store"] for s in view["steps"]}
    assert all(p["clean"] for p in view["proof"]), view["proof"]
    proof = next(p for p in view["proof"] if p["store"] == "campaigns")
    assert proof["checked"] > 0, proof
    assert proof["remnants"] == [], proof
    status, outbox = office.http("GET", f"/campaigns/outbox?customer_id={cid}", token=admin)
    assert status == 200, outbox
    assert outbox["entries"] == []

    status, verified = office.http("GET", "/privacy/audit/verify", token=officer)
    assert status == 200, verified
    assert verified["intact"] is True
    assert verified["entries"] >= 3
    assert "the audit chain is intact" in office.cli("audit", "verify")


def test_an_access_bundle_downloads_with_its_presigned_url(office: Running) -> None:
    cid = _customer(office, "access", "13700000043")
    customer = office.token("customer", cid)
    access = {"customer_id": cid, "kind": "access"}
    status, filed = office.http("POST", "/privacy/requests", access, token=customer)
    assert status == 201, filed
    rid = filed["request_id"]
    view = _completed(office, rid, customer)
    assert view["export_ready"] is True
    names = _bundle(office, rid, customer)
    assert "README.txt" in names
    assert "privacy/privacy_requests.json" in names
