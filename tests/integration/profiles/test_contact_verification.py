"""A customer's own change of phone or email tells them nothing about other customers: it waits,
sealed, for verification and is answered alike whether the number is free or taken. The
verification seam completes it, or hands a conflict to the managers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import boto3

from crm.clock import utc_now
from crm.composition import Crm, Settings, reset, root
from crm_local.harness import Suite, count_requests


def upsert(suite: Suite, *identities: tuple[str, str], **attrs: Any) -> str:
    body = {
        "identities": [{"channel": c, "external_id": x} for c, x in identities],
        "attributes": attrs,
    }
    out = suite.call("POST", "/customers", body)
    assert out.status == 201, out.body
    return str(out.body["customer_id"])


def patch_as_customer(suite: Suite, cid: str, **attrs: Any) -> Any:
    version = suite.call("GET", f"/customers/{cid}", role="customer", customer_id=cid).body[
        "version"
    ]
    body = {"version": version, "attributes": attrs}
    return suite.call("PATCH", f"/customers/{cid}", body, role="customer", customer_id=cid)


def comparable(body: dict[str, Any]) -> dict[str, Any]:
    """A response without what differs between any two customers (ids, times)."""
    drop = {"customer_id", "created_at", "updated_at", "identities"}
    out = {k: v for k, v in body.items() if k not in drop}
    out["pending_verification"] = [p["field"] for p in body["pending_verification"]]
    return out


def raw_dump(suite: Suite) -> str:
    table = suite.stack.refs["CustomersTable"]
    return repr(boto3.client("dynamodb").scan(TableName=table)["Items"])


def test_a_taken_and_a_free_number_get_the_same_answer(suite: Suite) -> None:
    upsert(suite, ("app", "cv-owner"), phone="13900000001", email="taken@example.com")
    asker = upsert(suite, ("app", "cv-asker"), name="小王")
    control = upsert(suite, ("app", "cv-control"), name="小王")
    # Two customers alike but for their ids, so only the answer to "is this number
    # somebody's?" could tell the responses apart.
    with count_requests() as taken_calls:
        taken = patch_as_customer(suite, asker, phone="13900000001", email="taken@example.com")
    with count_requests() as free_calls:
        free = patch_as_customer(suite, control, phone="13900000002", email="free@example.com")
    assert taken.status == free.status == 200
    assert comparable(taken.body) == comparable(free.body)
    assert comparable(free.body)["pending_verification"] == ["email", "phone"]
    assert [p["value"] for p in taken.body["pending_verification"]] == [
        "t***@example.com", "139****0001",
    ]  # fmt: skip
    # The same AWS requests too: the identities were not even looked at.
    assert dict(taken_calls) == dict(free_calls)
    assert "dynamodb.BatchGetItem" not in taken_calls
    # Nothing switched, nothing claimed.
    assert taken.body["attributes"]["phone"] is None
    assert free.body["attributes"]["email"] is None
    stranger = suite.call(
        "POST", "/customers", {"identities": [{"channel": "phone", "external_id": "13900000002"}]}
    )
    assert stranger.status == 201  # the free number is nobody's until verified


def test_a_pending_contact_is_sealed_at_rest(suite: Suite) -> None:
    cid = upsert(suite, ("app", "cv-sealed"))
    assert (
        patch_as_customer(suite, cid, phone="13700001234", email="sealed@example.com").status == 200
    )
    dump = raw_dump(suite)
    for plaintext in ("13700001234", "sealed@example.com"):
        assert plaintext not in dump
    assert "137****1234" in dump  # the masked form, as for verified PII
    staff = suite.call("GET", f"/customers/{cid}").body
    assert [(p["field"], p["value"]) for p in staff["pending_verification"]] == [
        ("email", "s***@example.com"), ("phone", "137****1234"),
    ]  # fmt: skip


def test_verification_of_a_free_number_makes_it_the_customers(suite: Suite) -> None:
    cid = upsert(suite, ("app", "cv-free"), phone="13600000001")
    patch_as_customer(suite, cid, phone="13600000002", city="苏州")
    done = root().profiles.edits.complete_contact_verification(cid, "phone")
    assert done.outcome == "applied"
    view = suite.call("GET", f"/customers/{cid}", role="customer", customer_id=cid).body
    assert view["attributes"]["phone"] == "+8613600000002"
    assert view["attributes"]["city"] == "苏州"
    assert view["pending_verification"] == []
    found = suite.call(
        "POST", "/customers", {"identities": [{"channel": "phone", "external_id": "13600000002"}]}
    )
    assert found.body["customer_id"] == cid
    released = suite.call(
        "POST", "/customers", {"identities": [{"channel": "phone", "external_id": "13600000001"}]}
    )
    assert released.status == 201  # the old number no longer identifies the customer


def test_verification_of_a_taken_number_goes_to_the_managers(suite: Suite) -> None:
    owner = upsert(suite, ("app", "cv-holder"), phone="13500000001")
    cid = upsert(suite, ("app", "cv-claimer"))
    patch_as_customer(suite, cid, phone="13500000001")
    done = root().profiles.edits.complete_contact_verification(cid, "phone")
    assert done.outcome == "conflict"
    assert done.suggestion_id
    view = suite.call("GET", f"/customers/{cid}", role="customer", customer_id=cid).body
    assert view["attributes"]["phone"] is None
    assert view["pending_verification"] == []
    queue = suite.call("GET", "/merge-suggestions", role="support_manager").body["suggestions"]
    assert [(s["suggestion_id"], s["reason"]) for s in queue] == [
        (done.suggestion_id, "verified_contact")
    ]
    assert set(queue[0]["customer_ids"]) == {owner, cid}
    assert queue[0]["identities"] == [
        {"channel": "phone", "external_id": "135****0001", "customer_id": owner}
    ]


def test_an_expired_change_is_dropped(suite: Suite) -> None:
    cid = upsert(suite, ("app", "cv-late"))
    patch_as_customer(suite, cid, email="late@example.com")
    later = utc_now() + timedelta(hours=25)
    reset(Crm(Settings.from_env(), clock=lambda: later))
    done = root().profiles.edits.complete_contact_verification(cid, "email")
    assert done.outcome == "expired"
    reset()
    view = suite.call("GET", f"/customers/{cid}", role="customer", customer_id=cid).body
    assert view["attributes"]["email"] is None
    assert view["pending_verification"] == []


def test_staff_edits_switch_at_once_and_name_the_conflict(suite: Suite) -> None:
    upsert(suite, ("app", "cv-s1"), phone="13400000001")
    cid = upsert(suite, ("app", "cv-s2"))
    taken = suite.call(
        "PATCH", f"/customers/{cid}", {"version": 1, "attributes": {"phone": "13400000001"}},
        role="support_agent",
    )  # fmt: skip
    assert taken.status == 409
    assert "another customer" in taken.body["error"]["message"]
    free = suite.call(
        "PATCH", f"/customers/{cid}", {"version": 1, "attributes": {"phone": "13400000002"}},
        role="support_agent",
    )  # fmt: skip
    assert free.status == 200
    assert free.body["attributes"]["phone"] == "+8613400000002"
    assert free.body["pending_verification"] == []


def test_a_customer_clearing_or_keeping_a_number_needs_no_verification(suite: Suite) -> None:
    cid = upsert(suite, ("app", "cv-keep"), phone="13300000001", email="keep@example.com")
    same = patch_as_customer(suite, cid, phone="133 0000 0001", email=None)
    assert same.status == 200
    assert same.body["pending_verification"] == []
    assert same.body["attributes"]["phone"] == "+8613300000001"
    assert same.body["attributes"]["email"] is None
    gone = suite.call(
        "POST",
        "/customers",
        {"identities": [{"channel": "email", "external_id": "keep@example.com"}]},
    )
    assert gone.status == 201
