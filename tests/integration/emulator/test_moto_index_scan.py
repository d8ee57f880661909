"""The emulator's scan of an index (segments skipped by hash key, the start key bisected, a
page's items projected without copying them whole) answers what moto's own scan answers: the
same items, counts and last keys, page after page, for sparse indexes of each projection type,
with segments, limits, filters and projections."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from moto import mock_aws
from moto.dynamodb.models.table import Table

from crm_local.moto_server import MOTOS_OWN, install_patches

INDEXES = {"scoring": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["agg", "tags", "rev"]},
           "keys": {"ProjectionType": "KEYS_ONLY"},
           "whole": {"ProjectionType": "ALL"}}  # fmt: skip


def item(n: int) -> dict[str, Any]:
    """A customer partition's items: a profile and its scores item are in the (sparse) index,
    ledger items are not."""
    pk = f"CUST#{n % 45:03d}"
    kind = n % 5
    sk = {0: "PROFILE", 1: "SCORES"}.get(kind, f"EVT#{n:04d}")
    value: dict[str, Any] = {"PK": pk, "SK": sk, "v": Decimal(n) / 4, "note": "x" * (n % 7)}
    if kind in (0, 1):
        value |= {"SPK": f"S{n % 3}", "rev": Decimal(n % 9),
                  "agg": {"orders": Decimal(n % 11), "products": {"p1": "c1", f"p{n}": "c2"},
                          "paid": [Decimal("1.50"), "two", {"nested": True}]},
                  "tags": {f"t{n % 4}", "vip"}}  # fmt: skip
    return value


@pytest.fixture
def client() -> Iterator[Any]:
    install_patches()
    with mock_aws():
        resource = boto3.resource("dynamodb")
        indexes: list[Any] = [
            {"IndexName": name, "Projection": projection,
             "KeySchema": [{"AttributeName": "SPK", "KeyType": "HASH"},
                           {"AttributeName": "SK", "KeyType": "RANGE"}]}
            for name, projection in INDEXES.items()
        ]  # fmt: skip
        created = resource.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"},
                       {"AttributeName": "SK", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"}
                                  for a in ("PK", "SK", "SPK")],
            GlobalSecondaryIndexes=indexes,
            BillingMode="PAY_PER_REQUEST",
        )  # fmt: skip
        with created.batch_writer() as batch:
            for n in range(400):
                batch.put_item(Item=item(n))
        yield boto3.client("dynamodb")


def plain(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer as the SDK's values (a string set's order means nothing in DynamoDB)."""
    read = TypeDeserializer().deserialize
    out = {k: v for k, v in answer.items() if k != "ResponseMetadata"}
    for name in ("Items",):
        if name in out:
            out[name] = [{k: read(v) for k, v in i.items()} for i in out[name]]
    if "LastEvaluatedKey" in out:
        out["LastEvaluatedKey"] = {k: read(v) for k, v in out["LastEvaluatedKey"].items()}
    return out


def pages(client: Any, table: str = "t", **asked: Any) -> list[dict[str, Any]]:
    out, start = [], None
    while True:
        answer = client.scan(
            TableName=table, **asked, **({"ExclusiveStartKey": start} if start else {})
        )
        out.append(plain(answer))
        start = answer.get("LastEvaluatedKey")
        if start is None:
            return out


def motos_pages(client: Any, table: str = "t", **asked: Any) -> list[dict[str, Any]]:
    with pytest.MonkeyPatch.context() as motos:
        motos.setattr(Table, "scan", MOTOS_OWN["Table.scan"])
        return pages(client, table, **asked)


SCANS: list[dict[str, Any]] = [
    {"IndexName": "scoring", "Limit": 9},
    {"IndexName": "scoring", "Segment": 0, "TotalSegments": 1, "Limit": 13},
    {"IndexName": "scoring", "Segment": 3, "TotalSegments": 8, "Limit": 4},
    {"IndexName": "scoring", "Segment": 5, "TotalSegments": 64},
    {"IndexName": "keys", "Segment": 1, "TotalSegments": 3, "Limit": 6},
    {"IndexName": "whole", "Segment": 2, "TotalSegments": 5, "Limit": 5},
    {"IndexName": "scoring", "Segment": 1, "TotalSegments": 2, "Limit": 11,
     "FilterExpression": "SK = :p", "ExpressionAttributeValues": {":p": {"S": "PROFILE"}},
     "ProjectionExpression": "PK, agg.products, tags"},
    {"IndexName": "scoring", "Select": "COUNT", "Segment": 0, "TotalSegments": 2, "Limit": 20},
]  # fmt: skip


@pytest.mark.parametrize("asked", SCANS)
def test_every_page_of_an_index_scan_is_motos(client: Any, asked: dict[str, Any]) -> None:
    ours = pages(client, **asked)
    theirs = motos_pages(client, **asked)
    assert ours == theirs
    assert sum(p["Count"] for p in ours) > 0


def test_pages_end_where_motos_do(client: Any) -> None:
    ours = pages(client, IndexName="scoring", Segment=2, TotalSegments=4, Limit=2)
    assert len(ours) > 2  # paginated: start keys were used
    items = [i for page in ours for i in page["Items"]]
    # the index's items only (profiles and scores items), each whole as the index projects it
    assert {i["SK"] for i in items} <= {"PROFILE", "SCORES"}
    assert all(set(i) == {"PK", "SK", "SPK", "agg", "tags", "rev"} for i in items)
    assert items == [
        i
        for p in motos_pages(client, IndexName="scoring", Segment=2, TotalSegments=4, Limit=2)
        for i in p["Items"]
    ]


def test_the_answer_is_a_copy(client: Any) -> None:
    """Items of a page share the stored values until they are written: changing the table
    afterwards changes nothing already answered, and the next scan sees the change."""
    first = pages(client, IndexName="scoring", Segment=0, TotalSegments=1)
    client.update_item(TableName="t", Key={"PK": {"S": "CUST#000"}, "SK": {"S": "PROFILE"}},
                       UpdateExpression="SET agg.orders = :n",
                       ExpressionAttributeValues={":n": {"N": "99"}})  # fmt: skip
    again = pages(client, IndexName="scoring", Segment=0, TotalSegments=1)
    changed = [
        i for p in again for i in p["Items"] if i["PK"] == "CUST#000" and i["SK"] == "PROFILE"
    ]
    before = [
        i for p in first for i in p["Items"] if i["PK"] == "CUST#000" and i["SK"] == "PROFILE"
    ]
    assert changed[0]["agg"]["orders"] == 99 != before[0]["agg"]["orders"]
    assert again == motos_pages(client, IndexName="scoring", Segment=0, TotalSegments=1)


def test_a_consistent_read_of_a_global_index_is_refused_as_moto_does(client: Any) -> None:
    with pytest.raises(client.exceptions.ClientError, match="Consistent reads"):
        client.scan(TableName="t", IndexName="scoring", ConsistentRead=True)


def test_partitions_added_between_scans_are_scanned(client: Any) -> None:
    """The segments' partitions are remembered between pages: new ones (a put, or a read of a
    missing key, which moto answers by adding an empty partition) are found on the next page."""
    asked: dict[str, Any] = {"IndexName": "scoring", "Segment": 1, "TotalSegments": 4, "Limit": 7}
    before = pages(client, **asked)
    client.get_item(TableName="t", Key={"PK": {"S": "NOBODY"}, "SK": {"S": "PROFILE"}})
    for n in range(400, 480, 5):  # profiles of 16 new customers
        added = item(n) | {"PK": f"NEW#{n:04d}"}
        client.put_item(TableName="t", Item={k: _wire(v) for k, v in added.items()})
    after = pages(client, **asked)
    assert after == motos_pages(client, **asked)
    new = {i["PK"] for p in after for i in p["Items"]} - {
        i["PK"] for p in before for i in p["Items"]
    }
    assert new
    assert all(pk.startswith("NEW#") for pk in new)


def test_a_table_without_a_sort_key(client: Any) -> None:
    resource = boto3.resource("dynamodb")
    table = resource.create_table(
        TableName="h",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("id", "g")],
        GlobalSecondaryIndexes=[{"IndexName": "by_g", "Projection": {"ProjectionType": "ALL"},
                                 "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}]}],
        BillingMode="PAY_PER_REQUEST",
    )  # fmt: skip
    for n in range(60):
        table.put_item(
            Item={"id": f"i{n}", "v": Decimal(n), **({"g": f"g{n % 4}"} if n % 3 else {})}
        )
    table.delete_item(Key={"id": "i4"})
    asked = {"IndexName": "by_g", "Segment": 2, "TotalSegments": 3, "Limit": 4}
    ours = pages(client, "h", **asked)
    assert ours == motos_pages(client, "h", **asked)
    assert len(ours) > 1
    assert 0 < sum(p["Count"] for p in ours) < 40


def _wire(value: Any) -> Any:
    return TypeSerializer().serialize(value)
