"""Filing, confirming, approving, rejecting and carrying out privacy requests: through the
API, the worker on PrivacyQueue and the stores of the registry (fakes for other families')."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import boto3
import pytest

from crm.composition import root
from crm.privacy.records import request_key
from crm.privacy.service import work_body
from crm.sqs_consumer import PoisonMessage
from tests.integration.privacy.conftest import Office


def _steps(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["store"]: step for step in view["steps"]}


def test_an_approved_erasure_runs_store_by_store_resumes_a_failed_store_and_proves_it(
    office: Office,
) -> None:
    cid = office.customer()
    orders, tickets = office.stores
    orders.rows[cid] = [{"order_id": "o-1"}, {"order_id": "o-2"}]
    tickets.rows[cid] = [{"ticket_id": "t-1"}]
    orders.rows["neighbour"] = [{"order_id": "o-9"}]

    filed = office.file(cid, "erasure")
    assert filed.status == 201, filed.body
    rid = filed.body["request_id"]
    assert filed.body["status"] == "awaiting_approval"
    assert filed.body["regulation"] == "pipl"  # the stack's data region is cn
    office.work()
    assert orders.calls == {}
    assert tickets.calls == {}

    approved = office.act(rid, "approve", {"reason": "verified_identity"})
    assert approved.status == 200, approved.body
    assert approved.body["status"] == "running"
    assert approved.body["approved_by"] == "privacy-1"

    office.work_once()  # the tickets store is down once
    view = office.get(rid)
    steps = _steps(view)
    assert view["status"] == "running"
    assert steps["orders"]["state"] == "done"
    assert steps["orders"]["counts"] == {"row": 2}
    assert steps["tickets"] == {
        "store": "tickets", "state": "failed", "attempts": 1, "error": "StoreDown",
        "counts": {}, "holdings": [],
    }  # fmt: skip
    # Never the error's text: it may quote data.
    table = office.suite.stack.refs["PrivacyTable"]
    raw = boto3.client("dynamodb").get_item(TableName=table, Key={
        k: {"S": v} for k, v in request_key(rid).items()})["Item"]  # fmt: skip
    assert "13800138000" not in str(raw)

    office.work()
    view = office.get(rid)
    assert view["status"] == "completed"
    steps = _steps(view)
    assert steps["tickets"]["state"] == "done"
    assert steps["tickets"]["attempts"] == 2
    assert orders.calls["erase"] == 1  # the failed store was retried alone
    assert tickets.calls["erase"] == 2
    proof = {p["store"]: p for p in view["proof"]}
    assert set(proof) == {"orders", "tickets", "privacy"}
    assert all(p["clean"] for p in proof.values())
    assert orders.rows == {"neighbour": [{"order_id": "o-9"}]}  # the neighbour is untouched

    completed = [e for e in office.events() if e["detail-type"] == "PrivacyRequestCompleted"]
    assert [(e["detail"]["request_id"], e["detail"]["clean"]) for e in completed] == [(rid, True)]

    # A completed request queued again changes nothing.
    office.suite.stack  # noqa: B018
    boto3.client("sqs").send_message(
        QueueUrl=office.suite.queue_url("PrivacyQueue"), MessageBody=work_body(rid, "orders")
    )
    office.work()
    assert orders.calls["erase"] == 1
    assert office.get(rid)["completed_at"] == view["completed_at"]


def test_remnants_found_by_verification_are_reported_by_location(office: Office) -> None:
    cid = office.customer()
    office.stores[0].leaves_remnant = True
    office.stores[1].failures = 0
    rid = office.file(cid, "erasure").body["request_id"]
    office.act(rid, "approve")
    office.work()
    view = office.get(rid)
    proof = {p["store"]: p for p in view["proof"]}
    assert proof["orders"]["clean"] is False
    assert proof["orders"]["remnants_total"] == 1
    assert proof["orders"]["remnants"] == [
        {"kind": "row", "location": "ordersTable/CUST#x/0", "identifier_kind": "customer_id"}
    ]
    event = next(e for e in office.events() if e["detail-type"] == "PrivacyRequestCompleted")
    assert event["detail"]["clean"] is False


def test_a_dry_run_lists_every_store_and_changes_nothing(office: Office) -> None:
    cid = office.customer()
    orders, tickets = office.stores
    orders.rows[cid] = [{"order_id": "o-1"}]
    reply = office.file(cid, "erasure", role="privacy_officer", dry_run=True)
    assert reply.status == 201, reply.body
    assert reply.body["status"] == "running"  # no approval, no confirmation for a dry run
    office.work()
    view = office.get(reply.body["request_id"])
    assert view["status"] == "completed"
    holdings = {s["store"]: s["holdings"] for s in view["steps"]}
    assert holdings["orders"] == [
        {"kind": "row", "count": 1, "erasure": "delete", "retained_because": None}
    ]
    assert "erase" not in orders.calls
    assert "erase" not in tickets.calls
    assert orders.rows[cid] == [{"order_id": "o-1"}]
    assert view["proof"] is None


def test_an_agent_files_the_customer_confirms_then_an_officer_approves(office: Office) -> None:
    cid = office.customer()
    other = office.customer("u-2")
    filed = office.file(cid, "erasure", role="support_agent", reason="phone_call")
    assert filed.status == 201, filed.body
    rid = filed.body["request_id"]
    assert filed.body["status"] == "awaiting_confirmation"
    assert filed.body["filed_by_staff"] is True

    assert office.act(rid, "approve").status == 409  # not before the customer confirms
    assert office.act(rid, "confirm", role="customer", customer_id=other).status == 403
    assert office.act(rid, "confirm", role="support_agent").status == 403
    confirmed = office.act(rid, "confirm", role="customer", customer_id=cid)
    assert confirmed.status == 200, confirmed.body
    assert confirmed.body["status"] == "awaiting_approval"
    assert confirmed.body["confirmed_at"] == "2026-11-23T02:00:00Z"
    assert office.act(rid, "confirm", role="customer", customer_id=cid).status == 409

    assert office.act(rid, "approve", role="support_agent").status == 403
    assert office.act(rid, "approve").status == 200


def test_a_rejected_request_never_runs(office: Office) -> None:
    cid = office.customer()
    rid = office.file(cid, "erasure").body["request_id"]
    rejected = office.act(rid, "reject", {"reason": "identity_not_verified"})
    assert rejected.status == 200, rejected.body
    assert rejected.body["status"] == "rejected"
    assert office.act(rid, "approve").status == 409
    office.work()
    assert office.stores[0].calls == {}


def test_a_second_request_of_the_same_kind_joins_the_open_one(office: Office) -> None:
    cid = office.customer()
    first = office.file(cid, "erasure")
    again = office.file(cid, "erasure")
    assert again.status == 200, again.body
    assert again.body["duplicate_of"] == first.body["request_id"]
    assert again.body["request_id"] == first.body["request_id"]
    other_kind = office.file(cid, "access")
    assert other_kind.status == 201
    # After the window, or once the first is closed, a new request is a new one.
    office.act(first.body["request_id"], "reject", {})
    assert office.file(cid, "erasure").status == 201


def test_who_may_file_and_read(office: Office) -> None:
    cid = office.customer()
    other = office.customer("u-2")
    assert office.file(other, "access", role="customer").status == 201
    # A customer files only for themself.
    reply = office.suite.call("POST", "/privacy/requests", {"customer_id": other, "kind": "access"},
                              role="customer", customer_id=cid)  # fmt: skip
    assert reply.status == 403
    assert office.file(cid, "access", role="marketer").status == 403
    rid = office.file(cid, "access").body["request_id"]
    assert office.suite.call("GET", f"/privacy/requests/{rid}", role="customer",
                             customer_id=other).status == 403  # fmt: skip
    assert office.suite.call("GET", f"/privacy/requests/{rid}", role="customer",
                             customer_id=cid).status == 200  # fmt: skip
    assert office.suite.call("GET", "/privacy/requests/nope", role="privacy_officer").status == 404
    assert office.file("no-such-customer", "access", role="privacy_officer").status == 404


def test_bad_requests_are_refused_clearly(office: Office) -> None:
    cid = office.customer()
    cases = [
        {"kind": "erasure", "purposes": ["marketing_sms"]},
        {"kind": "rectification"},
        {"kind": "access", "changes": {"city": "Hangzhou"}},
        {"kind": "deletion"},
        {"kind": "erasure", "reason": "Zhang San called"},
    ]
    for extra in cases:
        reply = office.file(cid, **extra)  # type: ignore[arg-type]
        assert reply.status == 400, (extra, reply.body)
    assert office.suite.call("GET", "/privacy/requests", role="privacy_officer",
                             query={"status": "lost"}).status == 400  # fmt: skip


def test_officers_list_requests_by_status(office: Office) -> None:
    ids = [office.file(office.customer(f"u-{n}"), "erasure").body["request_id"] for n in range(3)]
    page = office.suite.call("GET", "/privacy/requests", role="privacy_officer",
                             query={"status": "awaiting_approval", "limit": "2"})  # fmt: skip
    assert page.status == 200, page.body
    assert len(page.body["requests"]) == 2
    rest = office.suite.call("GET", "/privacy/requests", role="privacy_officer", query={
        "status": "awaiting_approval", "next_token": page.body["next_token"]})  # fmt: skip
    listed = [r["request_id"] for r in page.body["requests"] + rest.body["requests"]]
    assert sorted(listed) == sorted(ids)
    assert office.suite.call("GET", "/privacy/requests", role="support_agent",
                             query={"status": "running"}).status == 403  # fmt: skip


def test_an_access_request_bundles_every_store_and_hands_out_an_expiring_link(
    office: Office,
) -> None:
    cid = office.customer()
    orders, tickets = office.stores
    orders.rows[cid] = [{"order_id": "o-1", "amount": "12.50", "items": ["sku-1"]}]
    tickets.failures = 0
    filed = office.file(cid, "access")
    assert filed.body["status"] == "running"  # access needs no approval by default
    rid = filed.body["request_id"]
    early = office.suite.call("GET", f"/privacy/requests/{rid}/export", role="customer",
                              customer_id=cid)  # fmt: skip
    assert early.status == 409, early.body  # not ready yet: the request is running
    assert "not ready: the request is running" in early.body["error"]["message"]
    office.work()
    view = office.get(rid)
    assert view["status"] == "completed"
    assert view["export_ready"] is True

    link = office.suite.call("GET", f"/privacy/requests/{rid}/export", role="customer",
                             customer_id=cid)  # fmt: skip
    assert link.status == 200, link.body
    assert "X-Amz-Expires=3600" in link.body["url"]
    assert f"exports/{rid}/bundle.zip" in link.body["url"]
    assert link.body["expires_at"] == "2026-11-23T03:00:00Z"
    assert office.suite.call("GET", f"/privacy/requests/{rid}/export",
                             role="privacy_officer").status == 403  # fmt: skip

    bucket = office.suite.stack.refs["ExportsBucket"]
    body = boto3.client("s3").get_object(Bucket=bucket, Key=f"exports/{rid}/bundle.zip")["Body"]
    bundle_bytes = body.read()
    # Once the bundle is deleted (an erasure does it), no link to nothing is handed out.
    boto3.client("s3").delete_object(Bucket=bucket, Key=f"exports/{rid}/bundle.zip")
    gone = office.suite.call("GET", f"/privacy/requests/{rid}/export", role="customer",
                             customer_id=cid)  # fmt: skip
    assert gone.status == 404, gone.body
    assert "the export is gone" in gone.body["error"]["message"]
    with zipfile.ZipFile(io.BytesIO(bundle_bytes)) as bundle:
        names = set(bundle.namelist())
        assert {"README.txt", "orders/rows.json", "orders/rows.csv", "orders/explanations.txt",
                "privacy/privacy_requests.json"} <= names  # fmt: skip
        rows = bundle.read("orders/rows.csv").decode().splitlines()
        assert rows == ["order_id,amount,items", 'o-1,12.50,"[""sku-1""]"']
        assert "gold: 3 orders" in bundle.read("orders/explanations.txt").decode()


def test_poison_messages_fail_alone_and_name_no_values(office: Office) -> None:
    cid = office.customer()
    office.stores[1].failures = 0
    rid = office.file(cid, "access").body["request_id"]
    # A step of a store the running request does not have can never be carried out.
    with pytest.raises(PoisonMessage) as poisoned:
        root().privacy_executor.handle(work_body(rid, "no_such_store"))
    assert rid not in str(poisoned.value)

    sqs = boto3.client("sqs")
    url = office.suite.queue_url("PrivacyQueue")
    for body in ("not json", '{"request_id": "13800138000 x"}'):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    messages: list[dict[str, Any]] = []
    for _ in range(5):
        messages += office.suite.receive("PrivacyQueue")
    response = office.suite.deliver("PrivacyWorkerFunction", "PrivacyQueue", messages)
    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    poison = {m["MessageId"] for m in messages if "request_id" not in m["Body"]
              or "13800138000" in m["Body"]}  # fmt: skip
    assert len(poison) == 2
    assert failed == poison
    office.work()
    assert office.get(rid)["status"] == "completed"  # the good messages went on


def test_an_approval_may_leave_its_body_out_an_extension_may_not(office: Office) -> None:
    cid = office.customer()
    rid = office.file(cid, "erasure").body["request_id"]
    path = f"/privacy/requests/{rid}"
    extended = office.suite.call("POST", f"{path}/extend", None, role="privacy_officer")
    assert extended.status == 400, extended.body  # its reason is told to the customer
    assert extended.body["error"]["fields"] == [{"field": "body", "message": "missing"}]
    approved = office.suite.call("POST", f"{path}/approve", None, role="privacy_officer")
    assert approved.status == 200, approved.body
    assert approved.body["status"] == "running"
    assert approved.body["approved_by"] == "privacy-1"
