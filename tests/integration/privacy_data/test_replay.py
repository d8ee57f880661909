"""Erasures replayed after a restore: the tables (and the lake) go back to a point before a
customer's erasure, which brings her data back; the erasures completed since that point are
read from the audit archive and run again, store by store, leaving nothing of hers anywhere
and her neighbour as he was. Replaying again changes nothing."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import boto3

from crm.composition import root
from crm.dynamo import batch_write
from crm_local.harness import count_requests
from tests.integration.privacy_data.conftest import World, resources, search_everywhere
from tests.integration.privacy_data.test_erasure import everything, seeded_pair

# A restore of the data; PrivacyTable stays as it is (its audit chain must not rewind behind
# the archive: docs/operations.md).
KEPT_AS_IS = ("PrivacyTable",)


def snapshot(world: World) -> dict[str, Any]:
    """Every item of the data tables and every object of the lake: a backup."""
    dynamodb, s3 = boto3.client("dynamodb"), boto3.client("s3")
    tables = {
        table: [
            i
            for page in dynamodb.get_paginator("scan").paginate(TableName=table)
            for i in page["Items"]
        ]
        for logical, table in resources(world.suite, ("AWS::DynamoDB::Table",)).items()
        if logical not in KEPT_AS_IS
    }
    lake = str(world.suite.stack.refs["LakeBucket"])
    objects = {
        entry["Key"]: s3.get_object(Bucket=lake, Key=entry["Key"])["Body"].read()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=lake)
        for entry in page.get("Contents", [])
    }
    return {"tables": tables, "lake": objects}


def restore(world: World, backup: dict[str, Any]) -> None:
    """The tables and the lake as they were at the backup."""
    dynamodb, s3 = boto3.client("dynamodb"), boto3.client("s3")
    for table, items in backup["tables"].items():
        now = [i for page in dynamodb.get_paginator("scan").paginate(TableName=table)
               for i in page["Items"]]  # fmt: skip
        batch_write(table, [{"DeleteRequest": {"Key": {"PK": i["PK"], "SK": i["SK"]}}}
                            for i in now])  # fmt: skip
        batch_write(table, [{"PutRequest": {"Item": item}} for item in items])
    lake = str(world.suite.stack.refs["LakeBucket"])
    for key, body in backup["lake"].items():
        s3.put_object(Bucket=lake, Key=key, Body=body)


def test_erasures_since_the_restore_point_are_replayed_from_the_audit_archive(
    world: World,
) -> None:
    suite = world.suite
    alice, bob = seeded_pair(world)
    subject = world.subject(alice.customer_id)
    neighbour = world.subject(bob.customer_id)
    neighbour_before = sorted(search_everywhere(suite, neighbour))
    backup = snapshot(world)
    restore_point = world.shop.clock.now
    world.shop.clock.now += timedelta(hours=1)

    erasure = {"customer_id": alice.customer_id, "kind": "erasure"}
    filed = suite.call("POST", "/privacy/requests", erasure, role="customer",
                       customer_id=alice.customer_id)  # fmt: skip
    assert filed.status == 201, filed.body
    rid = filed.body["request_id"]
    approved = suite.call("POST", f"/privacy/requests/{rid}/approve",
                          {"reason": "verified_identity"}, role="privacy_officer")  # fmt: skip
    assert approved.status == 200, approved.body
    suite.drain("PrivacyWorkerFunction", "PrivacyQueue", rounds=50)
    view = suite.call("GET", f"/privacy/requests/{rid}", role="privacy_officer").body
    assert view["status"] == "completed", view
    assert search_everywhere(suite, subject) == []

    restore(world, backup)
    back = search_everywhere(suite, subject)
    assert any(p.startswith("CustomersTable/") for p in back), back
    assert any(p.startswith("LakeBucket/") for p in back), back

    # An erasure completed before the restore point is not replayed.
    assert root().erasure_replay.replay(world.shop.clock.now + timedelta(seconds=1)) == []
    replayed = root().erasure_replay.replay(restore_point)
    assert [(r.request_id, r.customer_id, r.subject_from, r.clean) for r in replayed] == [
        (rid, alice.customer_id, "restored_profile", True)
    ]
    assert replayed[0].erased["profiles.identity"] == 4
    assert search_everywhere(suite, subject) == []
    assert sorted(search_everywhere(suite, neighbour)) == neighbour_before

    # Audited, and the chain still verifies against its locked copies.
    assert root().privacy_audit.verify(check_archive=True).intact
    archive = root().privacy_files.archived_after(0)
    assert b'"erasure_replayed"' in archive[-1]
    assert alice.phone.encode() not in b"".join(archive)

    # Replayed again: nothing left to erase, nothing changes.
    after = everything(suite)
    again = root().erasure_replay.replay(restore_point)
    assert [(r.request_id, r.clean) for r in again] == [(rid, True)]
    # Only what the retention policy keeps is counted again (her request, kept anonymised).
    assert {k: n for k, n in again[0].erased.items() if n} == {"privacy.privacy_request": 1}

    def data(state: dict[str, Any]) -> dict[str, Any]:  # the audit trail grows, nothing else
        return {k: v for k, v in state.items() if "AUDIT" not in k and "auditarchive" not in k}

    assert data(everything(suite)) == data(after)


def test_the_replay_reads_the_archive_from_the_restore_point_not_from_its_start(
    world: World,
) -> None:
    """A year of audited reads is hundreds of thousands of archive objects: the replay finds
    where the restore point falls by a binary search over the listed objects and reads from
    there on."""
    audit, clock = root().privacy_audit, world.shop.clock
    already = len(root().privacy_files.archive_objects())
    for day in range(64):
        clock.now += timedelta(days=1)
        if day == 61:
            restore_point = clock.now - timedelta(hours=2)
        action = "request_completed" if day in (10, 62) else "request_filed"
        audit.append("privacy-worker", action, customer_id=f"c-{day}", request_id=f"r-{day}",
                     detail={"kind": "erasure"})  # fmt: skip
    objects = already + 64
    assert len(root().privacy_files.archive_objects()) == objects

    with count_requests() as calls:
        found = root().erasure_replay.completed_since(restore_point)
    assert [e.request_id for e in found] == ["r-62"]  # r-10 is before the restore point
    assert calls["s3.ListObjectsV2"] == 1
    # log2 of the objects to find the point, then the few after it (days 60 to 63)
    assert calls["s3.GetObject"] <= math.ceil(math.log2(objects)) + 1 + 4
    assert calls["s3.GetObject"] < objects // 4
