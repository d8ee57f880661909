"""The privacy family's own stores in the registry: an erasure deletes the customer's export
bundles and keeps their requests (ids and keyed hashes only) as proof."""

from __future__ import annotations

import boto3

from crm.composition import root
from crm.privacy.own_data import PrivacyOwnData, own_stores
from tests.integration.privacy.conftest import Office


def test_own_stores_claim_the_privacy_resources_of_the_template(office: Office) -> None:
    stores = own_stores(root())
    assert [type(s) for s in stores] == [PrivacyOwnData]
    assert [s.name for s in stores] == ["privacy"]
    claimed = {claim for store in stores for claim in store.claims}
    resources = office.suite.stack.template.resources
    assert claimed == {"PrivacyTable", "ExportsBucket", "AuditArchiveBucket"}
    assert all(claim in resources for claim in claimed)


def test_an_erasure_deletes_the_customers_bundles_and_keeps_the_requests(office: Office) -> None:
    body = {"identities": [{"channel": "phone", "external_id": "13800138000"}],
            "attributes": {"name": "Zhang San", "phone": "13800138000"}}  # fmt: skip
    cid = office.suite.call("POST", "/customers", body).body["customer_id"]
    office.stores[1].failures = 0
    access = office.file(cid, "access").body["request_id"]
    office.work()
    bucket = office.suite.stack.refs["ExportsBucket"]
    s3 = boto3.client("s3")

    def bundles() -> list[str]:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"exports/{access}/")
        return sorted(o["Key"] for o in listed.get("Contents", []))

    assert f"exports/{access}/bundle.zip" in bundles()
    neighbour = office.customer("u-2")
    other = office.file(neighbour, "access").body["request_id"]
    office.work()

    dry = office.file(cid, "erasure", role="privacy_officer", dry_run=True).body["request_id"]
    office.work()
    holdings = {s["store"]: s["holdings"] for s in office.get(dry)["steps"]}["privacy"]
    assert {h["kind"]: h["count"] for h in holdings} == {"privacy_request": 2, "export_file": 4}
    assert bundles()  # a dry run changes nothing

    erasure = office.file(cid, "erasure").body["request_id"]
    office.act(erasure, "approve")
    office.work()
    view = office.get(erasure)
    proof = {p["store"]: p for p in view["proof"]}
    assert proof["privacy"]["clean"] is True
    steps = {s["store"]: s for s in view["steps"]}
    assert steps["privacy"]["counts"] == {"export_file": 4, "anonymised:privacy_request": 3}
    assert bundles() == []
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"exports/{other}/")
    assert listed.get("KeyCount", 0) == 4  # the neighbour's bundle stays

    # The requests are kept as proof, with ids and keyed hashes only.
    table = office.suite.stack.refs["PrivacyTable"]
    items = boto3.client("dynamodb").scan(TableName=table)["Items"]
    assert "13800138000" not in str(items)
    assert "Zhang San" not in str(items)
