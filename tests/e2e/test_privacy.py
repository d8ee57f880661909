"""A customer with orders, a ticket and lake rows asks to be erased over the emulator's HTTP
gateway: a privacy officer approves, the worker erases store by store through PrivacyQueue,
and the request comes back completed with every store's verification. An access request's
bundle is downloaded with its presigned URL. The audit chain verifies, by route and command."""

from __future__ import annotations

import io
import urllib.request
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from crm_local.template import ROOT
from tests.e2e.conftest import Running, start_emulator, wait_for

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


def _completed(office: Running, rid: str, token: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        view: dict[str, Any] = office.http("GET", f"/privacy/requests/{rid}", token=token)[1]
        return view if view.get("status") == "completed" else None

    found: dict[str, Any] = wait_for(done, timeout=120, every=1)
    return found


def test_an_approved_erasure_completes_with_every_stores_proof(office: Running) -> None:
    cid = _customer(office, "erase", "13700000042")
    customer = office.token("customer", cid)
    status, ticket = office.http("POST", "/tickets", {
        "customer_id": cid, "channel": "mini_program", "order_id": "o-erase",
        "message": "请删除我的账户和所有数据",
    }, token=customer)  # fmt: skip
    assert status == 201, ticket

    erasure = {"customer_id": cid, "kind": "erasure"}
    status, filed = office.http("POST", "/privacy/requests", erasure, token=customer)
    assert status == 201, filed
    assert filed["status"] == "awaiting_approval"
    officer = office.token("privacy_officer")
    rid = filed["request_id"]
    status, approved = office.http("POST", f"/privacy/requests/{rid}/approve",
                                   {"reason": "verified_identity"}, token=officer)  # fmt: skip
    assert status == 200, approved

    view = _completed(office, rid, officer)
    assert {s["state"] for s in view["steps"]} == {"done"}
    assert view["proof"], view
    assert {p["store"] for p in view["proof"]} == {s["store"] for s in view["steps"]}
    assert all(p["clean"] for p in view["proof"]), view["proof"]

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
    status, link = office.http("GET", f"/privacy/requests/{rid}/export", token=customer)
    assert status == 200, link
    with urllib.request.urlopen(link["url"], timeout=30) as response:  # noqa: S310 - 127.0.0.1
        data = response.read()
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        names = bundle.namelist()
        assert "README.txt" in names
        assert "privacy/privacy_requests.json" in names
