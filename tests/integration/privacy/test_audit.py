"""The audit trail: hash-chained, archived under Object Lock, verified by route and command,
never forked by two writers at once, and recording staff's unmasked reads of PII."""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest

from crm.composition import root
from crm.privacy.records import AUDIT_PARTITION, audit_sort
from crm_local.cli import audit_verification
from tests.integration.privacy.conftest import Office


def _entries(office: Office) -> list[dict[str, Any]]:
    """The chain's entries, once the staff reads queued so far are appended."""
    office.suite.drain("PrivacyAuditFunction", "AuditQueue")
    table = office.suite.stack.refs["PrivacyTable"]
    out = boto3.client("dynamodb").query(
        TableName=table, KeyConditionExpression="PK = :p",
        ExpressionAttributeValues={":p": {"S": AUDIT_PARTITION}},
    )  # fmt: skip
    return out["Items"]


def _verify(office: Office) -> dict[str, Any]:
    reply = office.suite.call("GET", "/privacy/audit/verify", role="privacy_officer")
    assert reply.status == 200, reply.body
    body: dict[str, Any] = reply.body
    return body


def test_every_action_is_chained_and_the_chain_verifies(office: Office) -> None:
    cid = office.customer()
    rid = office.file(cid, "erasure", reason="customer_app").body["request_id"]
    office.act(rid, "approve", {"reason": "verified_identity"})
    office.stores[1].failures = 0
    office.work()
    items = _entries(office)
    actions = [i["action"]["S"] for i in items]
    assert actions == ["request_filed", "request_approved", "request_completed"]
    assert items[1]["prev_hash"]["S"] == items[0]["hash"]["S"]
    assert items[0]["why"]["S"] == "customer_app"
    assert items[1]["actor"]["S"] == "privacy-1"
    result = _verify(office)
    assert result == {"entries": 3, "intact": True, "first_broken": None, "problem": None,
                      "head_hash": items[-1]["hash"]["S"]}  # fmt: skip
    assert audit_verification(check_archive=True).intact
    assert office.suite.call("GET", "/privacy/audit/verify", role="support_agent").status == 403

    # An officer reads the trail itself, a page at a time, in the chain's order.
    first = office.suite.call("GET", "/privacy/audit", role="privacy_officer",
                              query={"limit": "2"})  # fmt: skip
    assert first.status == 200, first.body
    assert [e["action"] for e in first.body["entries"]] == actions[:2]
    assert first.body["entries"][1]["prev_hash"] == first.body["entries"][0]["hash"]
    assert first.body["entries"][0]["customer_id"] == cid
    rest = office.suite.call("GET", "/privacy/audit", role="privacy_officer",
                             query={"after": str(first.body["next_after"])})  # fmt: skip
    assert [e["action"] for e in rest.body["entries"]] == actions[2:]
    assert rest.body["next_after"] is None
    assert rest.body["entries"][0]["hash"] == result["head_hash"]
    assert office.suite.call("GET", "/privacy/audit", role="support_agent").status == 403


def test_a_changed_entry_is_found_and_named(office: Office) -> None:
    cid = office.customer()
    for _ in range(3):
        rid = office.file(cid, "erasure").body["request_id"]
        office.act(rid, "reject", {"reason": "duplicate"})
    table = office.suite.stack.refs["PrivacyTable"]
    boto3.client("dynamodb").update_item(
        TableName=table, Key={"PK": {"S": AUDIT_PARTITION}, "SK": {"S": audit_sort(3)}},
        UpdateExpression="SET actor = :a", ExpressionAttributeValues={":a": {"S": "someone"}},
    )  # fmt: skip
    result = _verify(office)
    assert result["intact"] is False
    assert result["first_broken"] == 3
    assert result["entries"] == 2
    assert "hash" in result["problem"]


def test_a_rewritten_chain_still_differs_from_its_locked_archive(office: Office) -> None:
    """Whoever can write the table can recompute every hash; not the archive's copies."""
    cid = office.customer()
    office.file(cid, "access")
    log = root().privacy_audit
    entry = root().privacy_store.last_audit()
    assert entry is not None
    forged = entry.model_copy(update={"actor": "someone"})
    forged = forged.model_copy(update={"hash": forged.digest()})
    table = office.suite.stack.refs["PrivacyTable"]
    boto3.client("dynamodb").delete_item(
        TableName=table, Key={"PK": {"S": AUDIT_PARTITION}, "SK": {"S": audit_sort(entry.seq)}}
    )
    assert root().privacy_store.put_audit(forged)
    assert log.verify().intact  # the chain alone cannot tell
    result = log.verify(check_archive=True)
    assert result.intact is False
    assert result.first_broken == entry.seq


def test_the_archive_bucket_locks_its_objects(office: Office) -> None:
    office.file(office.customer(), "access")
    bucket = office.suite.stack.refs["AuditArchiveBucket"]
    s3 = boto3.client("s3")
    config = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    retention = config["Rule"]["DefaultRetention"]
    assert (retention["Mode"], retention["Years"]) == ("COMPLIANCE", 7)
    key = "audit/000000000001.json"
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    version = head["VersionId"]
    with pytest.raises(s3.exceptions.ClientError):
        s3.delete_object(Bucket=bucket, Key=key, VersionId=version)


@pytest.mark.usefixtures("atomic_moto")
def test_two_writers_at_once_never_fork_the_chain(office: Office) -> None:
    log = root().privacy_audit
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for k in range(5):
                log.append(f"writer-{n}", "test_entry", detail={"k": k})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    items = _entries(office)
    assert [int(i["seq"]["N"]) for i in items] == list(range(1, 21))
    assert log.verify().intact


def test_staff_reads_of_unmasked_pii_are_recorded_by_field_name(office: Office) -> None:
    body = {"identities": [{"channel": "phone", "external_id": "13800138000"}],
            "attributes": {"name": "Zhang San", "phone": "13800138000"}}  # fmt: skip
    cid = office.suite.call("POST", "/customers", body).body["customer_id"]
    before = len(_entries(office))
    assert office.suite.call("GET", f"/customers/{cid}", role="support_agent").status == 200
    assert office.suite.call("GET", f"/customers/{cid}", role="marketer").status == 200  # masked
    items = _entries(office)[before:]
    reads = [i for i in items if i["action"]["S"] == "pii_read"]
    assert len(reads) == 1
    assert reads[0]["actor"]["S"] == "agent-1"
    assert reads[0]["customer_id"]["S"] == cid
    assert {f["S"] for f in reads[0]["fields"]["L"]} >= {"name", "phone"}
    assert "13800138000" not in str(items)
    assert "Zhang San" not in str(items)
