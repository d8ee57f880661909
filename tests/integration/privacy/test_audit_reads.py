"""Staff's unmasked PII reads reach the audit chain through AuditQueue: the read queues one
note (one request, no contention for the chain's head) and PrivacyAuditFunction appends a
batch at once (one head Query, one TransactWriteItems, one archive object). Many readers at
once lose no entry, a redelivered note is appended once, a note that is not one goes to the
DLQ, and the chain (and its locked archive) still catches tampering."""

from __future__ import annotations

import json
import threading
from typing import Any

import boto3
import pytest

from crm.composition import root
from crm.privacy.records import AUDIT_PARTITION, audit_sort
from crm.sqs_consumer import QueueMessage
from crm_local.harness import count_requests
from tests.integration.privacy.conftest import Office
from tests.integration.privacy.test_audit import _entries

QUEUE, FUNCTION = "AuditQueue", "PrivacyAuditFunction"


def _queued(office: Office) -> list[dict[str, Any]]:
    """The notes AuditQueue holds now (received, then made visible again)."""
    messages: list[dict[str, Any]] = []
    while batch := office.suite.receive(QUEUE):
        messages += batch
    sqs = boto3.client("sqs")
    for m in messages:
        sqs.change_message_visibility(
            QueueUrl=office.suite.queue_url(QUEUE),
            ReceiptHandle=m["ReceiptHandle"],
            VisibilityTimeout=0,
        )
    return messages


def _reads(office: Office) -> list[dict[str, Any]]:
    return [i for i in _entries(office) if i["action"]["S"] == "pii_read"]


def _as_messages(raw: list[dict[str, Any]]) -> list[QueueMessage]:
    return [QueueMessage(m["MessageId"], m["Body"], 1) for m in raw]


def test_a_read_queues_one_note_of_ids_and_writes_nothing_to_the_chain(office: Office) -> None:
    cid = office.customer()
    before = len(_entries(office))
    with count_requests() as calls:
        root().pii_reads.unmasked_read("agent-7", cid, ["phone", "name"], "profile_view")
    assert dict(calls) == {"sqs.SendMessageBatch": 1}
    [message] = _queued(office)
    note = json.loads(message["Body"])
    assert set(note) == {"read_id", "actor", "customer_id", "fields", "why", "at"}
    assert (note["actor"], note["customer_id"], note["fields"], note["why"]) == (
        "agent-7", cid, ["name", "phone"], "profile_view"
    )  # fmt: skip
    table = office.suite.stack.refs["PrivacyTable"]
    chain = boto3.client("dynamodb").query(
        TableName=table, KeyConditionExpression="PK = :p",
        ExpressionAttributeValues={":p": {"S": AUDIT_PARTITION}},
    )["Items"]  # fmt: skip
    assert len(chain) == before  # not appended until the consumer runs
    assert office.suite.drain(FUNCTION, QUEUE) == 1
    [read] = _reads(office)
    assert read["customer_id"]["S"] == cid
    assert read["detail"]["M"]["read_id"]["S"] == note["read_id"]


def test_a_batch_of_fifty_reads_is_three_requests_and_one_archive_object(office: Office) -> None:
    cid = office.customer()
    before = len(_entries(office))
    for n in range(50):
        root().pii_reads.unmasked_read(f"agent-{n % 4}", cid, ["phone"], "customer_search")
    messages = _as_messages(_queued(office))
    assert len(messages) == 50
    with count_requests() as calls:
        failed = root().audit_reads.handle(messages)
    assert failed == {}
    assert dict(calls) == {
        "dynamodb.Query": 1,  # the chain's head
        "dynamodb.TransactWriteItems": 1,  # 50 linked entries and 50 read markers
        "s3.PutObject": 1,  # the batch's archive copy
    }
    reads = _entries(office)[before:]
    assert len(reads) == 50
    assert [int(i["seq"]["N"]) for i in reads] == list(range(before + 1, before + 51))
    bucket = office.suite.stack.refs["AuditArchiveBucket"]
    key = f"audit/{before + 1:012d}-{before + 50:012d}.jsonl"
    lines = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == list(range(before + 1, before + 51))
    assert root().privacy_audit.verify(check_archive=True).intact

    # Delivered again (the batch's deletion was lost): nothing appended twice, the archive
    # copy written again, the chain intact.
    with count_requests() as again:
        assert root().audit_reads.handle(messages) == {}
    assert len(_entries(office)) == before + 50
    assert again["dynamodb.TransactWriteItems"] == 1  # refused: every read is in the chain
    assert again["s3.PutObject"] == 1
    assert root().privacy_audit.verify(check_archive=True).intact


@pytest.mark.usefixtures("atomic_moto")
def test_many_readers_and_two_appenders_at_once_lose_no_read(office: Office) -> None:
    cids = [office.customer(f"u-{n}") for n in range(3)]
    errors: list[BaseException] = []

    def read(n: int) -> None:
        try:
            for k in range(15):
                root().pii_reads.unmasked_read(f"agent-{n}", cids[k % 3], ["phone"])
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=read, args=(n,)) for n in range(8)]
    for thread in readers:
        thread.start()
    for thread in readers:
        thread.join()
    assert errors == []
    messages = _as_messages(_queued(office))
    assert len(messages) == 120

    # Two consumers append at once, while privacy actions append one by one.
    def append(part: list[QueueMessage]) -> None:
        try:
            for start in range(0, len(part), 20):
                assert root().audit_reads.handle(part[start : start + 20]) == {}
        except BaseException as exc:
            errors.append(exc)

    def act() -> None:
        try:
            for k in range(5):
                root().privacy_audit.append("privacy-1", "test_entry", detail={"k": k})
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=append, args=(messages[:60],)),
        threading.Thread(target=append, args=(messages[60:],)),
        threading.Thread(target=act),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    reads = _reads(office)
    ids = {json.loads(m.body)["read_id"] for m in messages}
    assert {r["detail"]["M"]["read_id"]["S"] for r in reads} == ids
    assert len(reads) == 120
    assert {(r["actor"]["S"], r["customer_id"]["S"]) for r in reads} == {
        (f"agent-{n}", cids[k % 3]) for n in range(8) for k in range(15)
    }
    items = _entries(office)
    assert [int(i["seq"]["N"]) for i in items] == list(range(1, len(items) + 1))
    result = root().privacy_audit.verify(check_archive=True)
    assert result.intact, result
    assert result.entries == len(items)


def test_a_note_that_is_not_one_goes_to_the_dlq_and_the_others_are_appended(
    office: Office,
) -> None:
    cid = office.customer()
    sqs = boto3.client("sqs")
    url = office.suite.queue_url(QUEUE)
    sqs.send_message(QueueUrl=url, MessageBody='{"actor": "agent-1", "phone": "13800138000"')
    bad = {"read_id": "r-1", "actor": "agent 1", "customer_id": cid, "fields": ["phone"],
           "why": "profile_view", "at": "2026-12-01T00:00:00Z"}  # fmt: skip
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(bad))
    root().pii_reads.unmasked_read("agent-1", cid, ["phone"])
    messages = office.suite.receive(QUEUE)
    assert len(messages) == 3
    response = office.suite.deliver(FUNCTION, QUEUE, messages)
    assert len(response["batchItemFailures"]) == 2
    assert len(_reads(office)) == 1
    # maxReceiveCount is 3 in the template: the third failure moves both to the DLQ.
    office.suite.drain(FUNCTION, QUEUE, rounds=5)
    dlq = office.suite.queue_url("AuditDLQ")
    dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
    assert len(dead) == 2
    assert office.suite.receive(QUEUE) == []
    assert len(_reads(office)) == 1
    assert root().privacy_audit.verify(check_archive=True).intact


def test_tampering_with_an_appended_read_is_caught(office: Office) -> None:
    cid = office.customer()
    for _ in range(3):
        root().pii_reads.unmasked_read("agent-1", cid, ["phone"])
    reads = _reads(office)
    assert len(reads) == 3
    seq = int(reads[1]["seq"]["N"])
    table = office.suite.stack.refs["PrivacyTable"]
    # Who read is changed: the entry's hash no longer matches.
    boto3.client("dynamodb").update_item(
        TableName=table, Key={"PK": {"S": AUDIT_PARTITION}, "SK": {"S": audit_sort(seq)}},
        UpdateExpression="SET actor = :a", ExpressionAttributeValues={":a": {"S": "someone"}},
    )  # fmt: skip
    result = root().privacy_audit.verify()
    assert (result.intact, result.first_broken) == (False, seq)
    # Rehashed to fit the chain: its batch's locked archive copy still differs.
    entry = next(e for e in root().privacy_store.audit_page(seq - 1, 1))
    forged = entry.model_copy(update={"hash": entry.digest()})
    boto3.client("dynamodb").delete_item(
        TableName=table, Key={"PK": {"S": AUDIT_PARTITION}, "SK": {"S": audit_sort(seq)}}
    )
    assert root().privacy_store.put_audit(forged)
    later = root().privacy_store.audit_page(seq, 10)
    for old in later:  # every later link rewritten, as a forger would
        boto3.client("dynamodb").delete_item(
            TableName=table, Key={"PK": {"S": AUDIT_PARTITION}, "SK": {"S": audit_sort(old.seq)}}
        )
    prev = forged
    for old in later:
        relinked = old.model_copy(update={"prev_hash": prev.hash})
        relinked = relinked.model_copy(update={"hash": relinked.digest()})
        assert root().privacy_store.put_audit(relinked)
        prev = relinked
    assert root().privacy_audit.verify().intact  # the chain alone cannot tell
    result = root().privacy_audit.verify(check_archive=True)
    assert (result.intact, result.first_broken) == (False, seq)
    # A read removed from the chain: its sequence number is missing.
    boto3.client("dynamodb").delete_item(
        TableName=table, Key={"PK": {"S": AUDIT_PARTITION}, "SK": {"S": audit_sort(seq)}}
    )
    result = root().privacy_audit.verify()
    assert (result.intact, result.first_broken) == (False, seq)


def test_a_forged_copy_put_beside_the_locked_one_is_caught(office: Office) -> None:
    cid = office.customer()
    for _ in range(2):
        root().pii_reads.unmasked_read("agent-1", cid, ["phone"])
    seq = int(_reads(office)[0]["seq"]["N"])
    assert root().privacy_audit.verify(check_archive=True).intact
    [entry] = root().privacy_store.audit_page(seq - 1, 1)
    forged = entry.model_copy(update={"actor": "someone"})
    forged = forged.model_copy(update={"hash": forged.digest()})
    # Listed before the genuine copy: verification reads every copy, not the first it meets.
    boto3.client("s3").put_object(
        Bucket=office.suite.stack.refs["AuditArchiveBucket"],
        Key=f"audit/{0:012d}-{seq:012d}.jsonl",
        Body=forged.model_dump_json().encode() + b"\n",
        ChecksumAlgorithm="SHA256",
    )
    result = root().privacy_audit.verify(check_archive=True)
    assert (result.intact, result.first_broken) == (False, seq)
