"""POST /events -> the profile-events queue (and its DLQ) -> the folder: what the queue holds
is sealed or indexed, never the customer's words or phone number, and still folds as before."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from crm.profiles.event_folding import EventFolding
from crm_local.harness import Suite, count_requests
from tests.integration.profiles.test_profile_events import recent

PHONE = "13812345678"
EMAIL = "lin.xiaoyu@example.com"
WORDS = "奶粉罐有凹痕，联系客服三天没人回复 / tin dented, no reply for 3 days"
QUERY = "婴儿奶粉 三段 爱他美"
# What must never be read off the queue: the note, the query, the phone and the email, in any
# of the forms a client may send or the code may normalise them to.
CLEAR = ["凹痕", "tin dented", "婴儿奶粉", "爱他美", PHONE, "+86" + PHONE, EMAIL, "lin.xiaoyu"]


def customer(suite: Suite, external_id: str, **attrs: Any) -> str:
    body = {"identities": [{"channel": "app", "external_id": external_id}], "attributes": attrs}
    reply = suite.call("POST", "/customers", body)
    assert reply.status in (200, 201), reply.body
    return str(reply.body["customer_id"])


def complaint(cid: str, event_id: str, note: str = WORDS) -> dict[str, Any]:
    return {"event_id": event_id, "type": "after_sales", "case": "complaint",
            "customer_id": cid, "note": note, "reason_code": "damaged",
            "occurred_at": recent()}  # fmt: skip


def search(event_id: str, identity: dict[str, str]) -> dict[str, Any]:
    return {"event_id": event_id, "type": "search", "query": QUERY, "identity": identity,
            "occurred_at": recent(5)}  # fmt: skip


def paid_by(event_id: str, identity: dict[str, str], amount: str = "59.90") -> dict[str, Any]:
    return {"event_id": event_id, "type": "order_paid", "order_id": f"o-{event_id}",
            "amount": amount, "identity": identity,
            "occurred_at": recent(60)}  # fmt: skip


def assert_nothing_in_clear(bodies: list[str]) -> None:
    assert bodies
    for body in bodies:
        # Both as sent and decoded, so an escaped \\u form could not hide a match.
        for text in (body, json.dumps(json.loads(body), ensure_ascii=False)):
            for clear in CLEAR:
                assert clear not in text, f"{clear!r} travels in the clear"


def test_the_queue_holds_no_note_query_phone_or_email_and_they_still_fold(suite: Suite) -> None:
    known = customer(suite, "u-known", phone=PHONE)
    phone = {"channel": "phone", "external_id": "138-1234-5678"}
    email = {"channel": "email", "external_id": EMAIL}
    batch = [complaint(known, "note-1"), search("q-1", phone), paid_by("p-1", phone),
             paid_by("e-1", email, "20.00")]  # fmt: skip
    assert suite.call("POST", "/events", {"events": batch}).status == 202

    messages = suite.receive("ProfileEventsQueue")
    assert len(messages) == 4
    assert_nothing_in_clear([m["Body"] for m in messages])
    response = suite.deliver("ProfileEventsFunction", "ProfileEventsQueue", messages)
    assert response == {"batchItemFailures": []}

    # The note reaches the timeline, readable by support and masked for marketing.
    agent = suite.call("GET", f"/customers/{known}", role="support_agent").body
    notes = [e for e in agent["timeline"] if e["event_id"] == "note-1"]
    assert [n["note"] for n in notes] == [WORDS]
    marketer = suite.call("GET", f"/customers/{known}", role="marketer").body
    assert [e["note"] for e in marketer["timeline"] if e["event_id"] == "note-1"] == ["****"]
    # The phone identity found the customer who gave that phone; the search counted, unstored.
    assert agent["orders"]["total_spend"] == "59.90"
    assert agent["behaviour"]["search_count"] == 1
    assert QUERY not in json.dumps(agent, ensure_ascii=False)
    # The unknown email made a new customer, who is found again by that email.
    by_email = {"identities": [{"channel": "email", "external_id": EMAIL.upper()}]}
    found = suite.call("POST", "/customers", by_email).body
    assert found["created"] is False
    assert found["customer_id"] != known
    assert found["profile"]["orders"]["total_spend"] == "20.00"
    marketer_view = suite.call("GET", f"/customers/{found['customer_id']}", role="marketer").body
    assert {"channel": "email", "external_id": "l***@example.com"} in marketer_view["identities"]


def test_a_failing_event_waits_in_the_dlq_sealed_and_folds_after_a_redrive(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = customer(suite, "u-1")
    phone = {"channel": "phone", "external_id": PHONE}
    batch = {"events": [complaint(cid, "note-1"), search("q-1", phone)]}
    assert suite.call("POST", "/events", batch).status == 202

    def outage(*_: Any, **__: Any) -> None:
        raise RuntimeError("the folder is broken")

    with monkeypatch.context() as patched:
        patched.setattr(EventFolding, "fold_customer", outage)
        suite.drain(rounds=5)  # maxReceiveCount is 3: then SQS moves them to the DLQ
    assert suite.receive("ProfileEventsQueue") == []
    sqs = boto3.client("sqs")
    dlq = suite.queue_url("ProfileEventsDLQ")
    dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
    assert len(dead) == 2
    assert_nothing_in_clear([m["Body"] for m in dead])

    # A redrive (start-message-move-task in AWS) sends them back as they are; the batch key
    # still opens the note after its days in the DLQ.
    source = suite.queue_url("ProfileEventsQueue")
    for message in dead:
        sqs.send_message(QueueUrl=source, MessageBody=message["Body"])
        sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
    assert suite.drain() == 2
    agent = suite.call("GET", f"/customers/{cid}", role="support_agent").body
    assert agent["timeline"][0]["note"] == WORDS


def test_a_message_queued_before_events_travelled_sealed_still_folds(suite: Suite) -> None:
    """During a deploy, and after a redrive of an older DLQ, the queue holds the event as the
    previous release queued it: as the client sent it."""
    cid = customer(suite, "u-1", phone=PHONE)
    legacy = [
        complaint(cid, "note-old"),
        paid_by("p-old", {"channel": "phone", "external_id": PHONE}),
    ]
    sqs = boto3.client("sqs")
    for event in legacy:
        sqs.send_message(
            QueueUrl=suite.queue_url("ProfileEventsQueue"), MessageBody=json.dumps(event)
        )
    assert suite.drain() == 2
    agent = suite.call("GET", f"/customers/{cid}", role="support_agent").body
    assert agent["orders"]["total_spend"] == "59.90"
    assert [e["note"] for e in agent["timeline"] if e["event_id"] == "note-old"] == [WORDS]


def test_aws_requests_to_queue_and_fold_free_text(suite: Suite) -> None:
    cid = customer(suite, "u-1", phone=PHONE)
    phone = {"channel": "phone", "external_id": PHONE}
    suite.call("POST", "/events", {"events": [paid_by("warm", phone)]})
    suite.drain()  # warm: the blind-index key is fetched once per container

    # Accepting 100 events: one batched check that their customers exist, ten SendMessageBatch
    # calls, and one data key for the whole batch.
    hundred = [complaint(cid, f"n-{i}") for i in range(40)]
    hundred += [search(f"q-{i}", phone) for i in range(30)]
    hundred += [paid_by(f"p-{i}", phone) for i in range(30)]
    with count_requests() as intake:
        assert suite.call("POST", "/events", {"events": hundred}).status == 202
    assert dict(intake) == {
        "dynamodb.BatchGetItem": 1,
        "sqs.SendMessageBatch": 10,
        "kms.GenerateDataKey": 1,
    }
    # Without free text, no KMS call at all (and no customer id to check: it names an identity).
    with count_requests() as plain:
        suite.call("POST", "/events", {"events": [paid_by("p-plain", phone)]})
    assert dict(plain) == {"sqs.SendMessageBatch": 1}
    suite.drain(rounds=20)

    # Folding ten notes of one request: one Decrypt for the batch's key, one for the customer's
    # key (each note is re-sealed under it, unwrapped once per batch).
    twenty = [complaint(cid, f"m-{i}") for i in range(20)]
    suite.call("POST", "/events", {"events": twenty})
    first = suite.receive("ProfileEventsQueue")
    assert len(first) == 10
    with count_requests() as fold:
        suite.deliver("ProfileEventsFunction", "ProfileEventsQueue", first)
    assert dict(fold) == {
        "dynamodb.BatchGetItem": 1,
        "dynamodb.TransactWriteItems": 1,
        "kms.Decrypt": 1 + 1,
        "s3.PutObject": 1,
        "events.PutEvents": 1,
    }
    # The rest of that request, in a later batch of the same container: its key is cached.
    rest = suite.receive("ProfileEventsQueue")
    assert len(rest) == 10
    with count_requests() as again:
        suite.deliver("ProfileEventsFunction", "ProfileEventsQueue", rest)
    assert again["kms.Decrypt"] == 1


def test_a_tampered_message_fails_alone_without_showing_what_it_holds(suite: Suite) -> None:
    """A sealed note moved to another batch's key is refused by KMS (the batch id is the
    key's encryption context): a poison message, while the others of its batch fold."""
    cid = customer(suite, "u-1")
    batch = {"events": [complaint(cid, "note-1"), complaint(cid, "note-2")]}
    assert suite.call("POST", "/events", batch).status == 202
    messages = suite.receive("ProfileEventsQueue")
    assert len(messages) == 2
    queued = json.loads(messages[0]["Body"])
    queued["key"]["batch_id"] = "another-batch"
    messages[0] = {**messages[0], "Body": json.dumps(queued)}
    response = suite.deliver("ProfileEventsFunction", "ProfileEventsQueue", messages)
    assert response["batchItemFailures"] == [{"itemIdentifier": messages[0]["MessageId"]}]
    agent = suite.call("GET", f"/customers/{cid}", role="support_agent").body
    untouched = ({"note-1", "note-2"} - {queued["event"]["event_id"]}).pop()
    assert [e["event_id"] for e in agent["timeline"]] == [untouched]
