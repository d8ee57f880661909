"""More of the emulator's queries of an index (test_moto_index_query.py has the first) give
moto's own answers: the same items, counts and last keys, page after page, for global and local
indexes, string, number and binary index keys (2 and 2.0 one key), with and without an index
sort key, items without the index's keys or with another type under its name, key conditions,
filters, projections and an unknown index."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models.table import Table

from crm_local.moto_server import MOTOS_OWN, install_patches
from tests.integration.emulator.test_moto_query_partition import (
    motos_pages as motos_partition_pages,
)
from tests.integration.emulator.test_moto_query_partition import pages as partition_pages


def _attrs(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"AttributeName": n, "AttributeType": t} for n, t in pairs]


def _keys(hash_name: str, range_name: str | None = None) -> list[dict[str, str]]:
    keys = [{"AttributeName": hash_name, "KeyType": "HASH"}]
    return keys + ([{"AttributeName": range_name, "KeyType": "RANGE"}] if range_name else [])


@pytest.fixture
def client() -> Iterator[Any]:
    install_patches()
    with mock_aws():
        dynamodb: Any = boto3.client("dynamodb")  # untyped: the tables are built from plain lists
        dynamodb.create_table(
            TableName="t",
            KeySchema=_keys("PK", "SK"),
            AttributeDefinitions=_attrs(("PK", "S"), ("SK", "S"), ("email", "S"), ("n", "N"),
                                        ("b", "B"), ("at", "S"), ("tier", "S")),
            GlobalSecondaryIndexes=[
                {"IndexName": "by_email", "KeySchema": _keys("email"),
                 "Projection": {"ProjectionType": "KEYS_ONLY"}},
                {"IndexName": "by_n", "KeySchema": _keys("n", "at"),
                 "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["v"]}},
                {"IndexName": "by_b", "KeySchema": _keys("b"),
                 "Projection": {"ProjectionType": "ALL"}},
            ],
            LocalSecondaryIndexes=[
                {"IndexName": "by_tier", "KeySchema": _keys("PK", "tier"),
                 "Projection": {"ProjectionType": "ALL"}},
            ],
            BillingMode="PAY_PER_REQUEST",
        )  # fmt: skip
        table = boto3.resource("dynamodb").Table("t")
        with table.batch_writer() as batch:
            for k in range(240):
                item: dict[str, Any] = {"PK": f"C{k % 8}", "SK": f"E{(k * 37) % 1000:04d}",
                                        "v": Decimal(k)}  # fmt: skip
                if k % 3:  # a third of the items are not in the email index
                    item["email"] = f"u{k % 5}@x"
                if k % 4:
                    item["n"] = Decimal(k % 6) if k % 7 else Decimal("2.0")  # 2 and 2.0: one key
                    item["at"] = f"2026-{1 + k % 12:02d}"
                if k % 5 == 0:
                    item["b"] = bytes([k % 3])
                if k % 2:
                    item["tier"] = ["gold", "silver"][k % 4 // 2]
                if k % 11 == 0:
                    item["email"] = Decimal(k)  # another type under the index's attribute name
                    item.pop("n", None)
                batch.put_item(Item=item)
        yield dynamodb


def pages(client: Any, **asked: Any) -> list[dict[str, Any]]:
    return partition_pages(client, TableName="t", **asked)


def motos_pages(client: Any, **asked: Any) -> list[dict[str, Any]]:
    return motos_partition_pages(client, TableName="t", **asked)


def _values(**values: dict[str, Any]) -> dict[str, Any]:
    return {f":{k}": v for k, v in values.items()}


QUERIES: list[dict[str, Any]] = [
    {"IndexName": "by_email", "KeyConditionExpression": "email = :e",
     "ExpressionAttributeValues": _values(e={"S": "u2@x"}), "Limit": 7},
    {"IndexName": "by_email", "KeyConditionExpression": "email = :e",
     "ExpressionAttributeValues": _values(e={"S": "nobody@x"})},
    {"IndexName": "by_email", "KeyConditionExpression": "email = :e",
     "ExpressionAttributeValues": _values(e={"S": "u1@x"}), "Select": "COUNT"},
    {"IndexName": "by_n", "KeyConditionExpression": "n = :n",
     "ExpressionAttributeValues": _values(n={"N": "2"}), "Limit": 5},
    {"IndexName": "by_n", "KeyConditionExpression": "n = :n AND begins_with(#a, :y)",
     "ExpressionAttributeNames": {"#a": "at"}, "ScanIndexForward": False, "Limit": 4,
     "ExpressionAttributeValues": _values(n={"N": "3.0"}, y={"S": "2026-0"})},
    {"IndexName": "by_n", "KeyConditionExpression": "n = :n AND #a BETWEEN :lo AND :hi",
     "ExpressionAttributeNames": {"#a": "at"}, "FilterExpression": "v > :v",
     "ProjectionExpression": "PK, v",
     "ExpressionAttributeValues": _values(n={"N": "1"}, lo={"S": "2026-03"},
                                          hi={"S": "2026-09"}, v={"N": "50"})},
    {"IndexName": "by_b", "KeyConditionExpression": "b = :b",
     "ExpressionAttributeValues": _values(b={"B": b"\x01"}), "Limit": 3},
    {"IndexName": "by_tier", "KeyConditionExpression": "PK = :p AND tier = :t",
     "ExpressionAttributeValues": _values(p={"S": "C3"}, t={"S": "gold"}), "Limit": 2},
    {"IndexName": "by_tier", "KeyConditionExpression": "PK = :p",
     "ExpressionAttributeValues": _values(p={"S": "C5"}), "ScanIndexForward": False},
]  # fmt: skip


@pytest.mark.parametrize("asked", QUERIES)
def test_every_page_of_an_index_query_is_motos(client: Any, asked: dict[str, Any]) -> None:
    ours = pages(client, **asked)
    theirs = motos_pages(client, **asked)
    assert ours == theirs
    assert Table.query is not MOTOS_OWN["Table.query"]  # the emulator's query answered ours


def test_an_index_query_finds_the_items_of_its_key(client: Any) -> None:
    ours = pages(client, **QUERIES[0])
    assert len(ours) > 1  # paginated: start keys were used
    keys = [i["PK"]["S"] + i["SK"]["S"] for page in ours for i in page["Items"]]
    assert len(keys) == len([k for k in range(240) if k % 3 and k % 11 and k % 5 == 2])
    numbers = [i for page in pages(client, **QUERIES[3]) for i in page["Items"]]
    assert {i["n"]["N"] for i in numbers} == {"2", "2.0"}  # one key, as written
    assert len(numbers) == len([k for k in range(240) if k % 4 and k % 11
                                and (k % 6 == 2 if k % 7 else True)])  # fmt: skip


def test_a_refused_index_query_is_refused_as_moto_refuses_it(client: Any) -> None:
    asked = {"IndexName": "nope", "KeyConditionExpression": "email = :e",
             "ExpressionAttributeValues": _values(e={"S": "u2@x"})}  # fmt: skip
    with pytest.raises(client.exceptions.ClientError) as ours:
        pages(client, **asked)
    with pytest.raises(client.exceptions.ClientError) as theirs:
        motos_pages(client, **asked)
    assert ours.value.response["Error"] == theirs.value.response["Error"]
