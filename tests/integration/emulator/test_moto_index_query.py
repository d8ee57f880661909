"""The emulator's query of a global index (moto's own, over the items that hold the asked index
key instead of the whole table, sorted) gives moto's own answers: the same items, counts and
last keys, page after page, forwards and backwards, for a sparse keys-only index with a sort
key (the member indexes), one that projects all, and one without a sort key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models.table import Table

from crm_local import moto_server
from crm_local.moto_server import MOTOS_OWN, install_patches
from tests.integration.emulator.test_moto_query_partition import motos_pages, pages


@pytest.fixture
def client() -> Iterator[Any]:
    install_patches()
    with mock_aws():
        resource = boto3.resource("dynamodb")
        created = resource.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"},
                       {"AttributeName": "SK", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"}
                                  for n in ("PK", "SK", "TIER", "SPK", "G")],
            GlobalSecondaryIndexes=[
                {"IndexName": "members", "Projection": {"ProjectionType": "KEYS_ONLY"},
                 "KeySchema": [{"AttributeName": "TIER", "KeyType": "HASH"},
                               {"AttributeName": "SPK", "KeyType": "RANGE"}]},
                {"IndexName": "all", "Projection": {"ProjectionType": "ALL"},
                 "KeySchema": [{"AttributeName": "G", "KeyType": "HASH"},
                               {"AttributeName": "SK", "KeyType": "RANGE"}]},
                {"IndexName": "hash_only", "Projection": {"ProjectionType": "ALL"},
                 "KeySchema": [{"AttributeName": "G", "KeyType": "HASH"}]},
            ],
            BillingMode="PAY_PER_REQUEST",
        )  # fmt: skip
        with created.batch_writer() as batch:
            for n in range(400):
                cid = f"c{(n * 7919) % 400:04d}"
                item = {"PK": f"CUST#{cid}", "SK": "SCORES" if n % 2 else "PROFILE", "v": n}
                if n % 2:  # scores items only, in one of three tiers: the index is sparse
                    item |= {"TIER": f"tier:t{n % 3}#{n % 4:02d}", "SPK": cid}
                if n % 5:
                    item["G"] = f"g{n % 3}"
                batch.put_item(Item=item)
        yield boto3.client("dynamodb")


QUERIES: list[dict[str, Any]] = [
    {"IndexName": "members", "KeyConditionExpression": "TIER = :t", "Limit": 7,
     "ExpressionAttributeValues": {":t": {"S": "tier:t1#01"}}},
    {"IndexName": "members", "KeyConditionExpression": "TIER = :t AND SPK > :c",
     "ExpressionAttributeValues": {":t": {"S": "tier:t2#03"}, ":c": {"S": "c0100"}},
     "ScanIndexForward": False, "Limit": 5},
    {"IndexName": "members", "KeyConditionExpression": "TIER = :t",
     "ExpressionAttributeValues": {":t": {"S": "tier:none#00"}}},
    {"IndexName": "all", "KeyConditionExpression": "G = :g AND begins_with(SK, :s)",
     "ExpressionAttributeValues": {":g": {"S": "g1"}, ":s": {"S": "SC"}, ":v": {"N": "100"}},
     "FilterExpression": "v > :v", "Limit": 6},
    {"IndexName": "hash_only", "KeyConditionExpression": "G = :g", "Limit": 11,
     "ExpressionAttributeValues": {":g": {"S": "g2"}}},
    {"IndexName": "all", "KeyConditionExpression": "G = :g", "Select": "COUNT",
     "ExpressionAttributeValues": {":g": {"S": "g0"}}},
]  # fmt: skip


@pytest.mark.parametrize("asked", QUERIES)
def test_every_page_of_an_index_query_is_motos(client: Any, asked: dict[str, Any]) -> None:
    ours = pages(client, TableName="t", **asked)
    assert ours == motos_pages(client, TableName="t", **asked)


def test_an_index_query_reads_only_the_items_of_its_key(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Table.query is not MOTOS_OWN["Table.query"]
    given: list[int] = []
    real = moto_server._index_partition

    def counted(*args: Any) -> list[Any] | None:
        found = real(*args)
        given.append(-1 if found is None else len(found))
        return found

    monkeypatch.setattr(moto_server, "_index_partition", counted)
    asked = QUERIES[0]
    ours = pages(client, TableName="t", **asked)
    items = [i for page in ours for i in page["Items"]]
    assert len(ours) > 1  # paginated: start keys were used
    assert {i["TIER"]["S"] for i in items} == {"tier:t1#01"}
    assert set(given) == {len(items)}  # moto was given those items, not the table's 400
    assert [i["SPK"]["S"] for i in items] == sorted(i["SPK"]["S"] for i in items)
