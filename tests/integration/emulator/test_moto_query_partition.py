"""The emulator's query of a table (one partition's items, not the whole table's) gives moto's
own answers: the same items, counts and last keys, page after page, forwards and backwards,
with key conditions, filters and projections, for tables with and without a sort key."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models.table import Table

from crm_local.moto_server import MOTOS_OWN, install_patches

NUMBERS = "nums"  # a numeric hash key: 7 and 7.0 name one partition


def sort_key(n: int) -> str:
    return "PROFILE" if n % 5 == 0 else f"EVT#{(n * 37) % 1000:04d}"


@pytest.fixture
def client() -> Iterator[Any]:
    install_patches()
    with mock_aws():
        resource = boto3.resource("dynamodb")
        created = resource.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"},
                       {"AttributeName": "SK", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"},
                                  {"AttributeName": "SK", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )  # fmt: skip
        with created.batch_writer() as batch:
            for n in range(300):
                batch.put_item(Item={"PK": f"C{n % 6}", "SK": sort_key(n), "v": Decimal(n)})
        numbers = resource.create_table(
            TableName=NUMBERS,
            KeySchema=[{"AttributeName": "n", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "n", "AttributeType": "N"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for n in range(20):
            numbers.put_item(Item={"n": Decimal(n), "v": f"x{n}"})
        yield boto3.client("dynamodb")


def pages(client: Any, **asked: Any) -> list[dict[str, Any]]:
    out, start = [], None
    while True:
        answer = client.query(**asked, **({"ExclusiveStartKey": start} if start else {}))
        answer.pop("ResponseMetadata")
        out.append(answer)
        start = answer.get("LastEvaluatedKey")
        if start is None:
            return out


def motos_pages(client: Any, **asked: Any) -> list[dict[str, Any]]:
    with pytest.MonkeyPatch.context() as motos:
        motos.setattr(Table, "query", MOTOS_OWN["Table.query"])
        return pages(client, **asked)


QUERIES: list[dict[str, Any]] = [
    {"KeyConditionExpression": "PK = :p", "ExpressionAttributeValues": {":p": {"S": "C2"}},
     "Limit": 7},
    {"KeyConditionExpression": "PK = :p AND begins_with(SK, :e)", "Limit": 9,
     "ExpressionAttributeValues": {":p": {"S": "C3"}, ":e": {"S": "EVT#"}},
     "ScanIndexForward": False},
    {"KeyConditionExpression": "PK = :p AND SK BETWEEN :a AND :b",
     "ExpressionAttributeValues": {":p": {"S": "C1"}, ":a": {"S": "EVT#0200"},
                                   ":b": {"S": "EVT#0700"}, ":v": {"N": "100"}},
     "FilterExpression": "v > :v", "ProjectionExpression": "SK, v", "Limit": 4},
    {"KeyConditionExpression": "PK = :p", "ExpressionAttributeValues": {":p": {"S": "C9"}}},
    {"KeyConditionExpression": "PK = :p", "ExpressionAttributeValues": {":p": {"S": "C0"}},
     "Select": "COUNT"},
]  # fmt: skip


@pytest.mark.parametrize("asked", QUERIES)
def test_every_page_of_a_query_is_motos(client: Any, asked: dict[str, Any]) -> None:
    ours = pages(client, TableName="t", **asked)
    theirs = motos_pages(client, TableName="t", **asked)
    assert ours == theirs


def test_a_query_reads_its_partition_only(client: Any) -> None:
    assert Table.query is not MOTOS_OWN["Table.query"]  # the emulator's query answered
    asked = QUERIES[0]
    ours = pages(client, TableName="t", **asked)
    assert len(ours) > 1  # paginated: start keys were used
    items = [i for page in ours for i in page["Items"]]
    assert [i["PK"]["S"] for i in items] == ["C2"] * len(items)
    assert [i["SK"]["S"] for i in items] == sorted({sort_key(n) for n in range(2, 300, 6)})


@pytest.mark.parametrize("key", ["7", "7.0", "21"])
def test_a_numeric_hash_key_finds_motos_item(client: Any, key: str) -> None:
    asked = {"KeyConditionExpression": "n = :n", "ExpressionAttributeValues": {":n": {"N": key}}}
    ours = pages(client, TableName=NUMBERS, **asked)
    assert ours == motos_pages(client, TableName=NUMBERS, **asked)
    assert ours[0]["Count"] == (0 if key == "21" else 1)


def test_queries_and_scans_on_many_threads_see_their_own_partition(client: Any) -> None:
    """moto serves requests on several threads (the emulator's server, concurrent dispatch in
    the benchmarks): the partition a query is given is its thread's alone (an attribute set on
    the shared table was once deleted under another thread's query: AttributeError)."""

    def one(partition: str) -> list[dict[str, Any]]:
        return pages(client, TableName="t", KeyConditionExpression="PK = :p",
                     ExpressionAttributeValues={":p": {"S": partition}})  # fmt: skip

    expected = {p: one(p) for p in ("C0", "C1", "C2")}
    scanned = client.scan(TableName="t", Segment=0, TotalSegments=2)["Count"]
    failures: list[BaseException] = []

    def reader(partition: str) -> None:
        try:
            for _ in range(30):
                assert one(partition) == expected[partition]
                assert client.scan(TableName="t", Segment=0, TotalSegments=2)["Count"] == scanned
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=reader, args=(p,)) for p in ("C0", "C1", "C2") * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
