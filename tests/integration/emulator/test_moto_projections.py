"""The emulator's faster projections and index scans give moto's own answers: each one is
compared with the function it replaced, on the same items."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import Binary
from moto import mock_aws
from moto.backends import get_backend
from moto.dynamodb.models import dynamo_type

from crm_local.moto_server import MOTOS_OWN, install_patches

RAW: dict[str, Any] = {
    "PK": {"S": "p"},
    "s": {"S": "见面 café"},
    "n": {"N": "-12.50"},
    "e": {"N": "1E+3"},
    "b": {"B": b"\x00\xffbytes"},
    "ss": {"SS": ["b", "a", "c"]},
    "ns": {"NS": ["2.5", "1", "10"]},
    "bs": {"BS": [b"\x01", b"\x02"]},
    "m": {"M": {"nested": {"L": [{"N": "1"}, {"S": "two"}, {"NULL": True}, {"B": b"\x03"}]}}},
    "l": {"L": []},
    "null": {"NULL": True},
    "yes": {"BOOL": True},
}


@pytest.fixture
def patched() -> Iterator[None]:
    install_patches()
    with mock_aws():
        yield


def _item() -> Any:
    return dynamo_type.Item(dynamo_type.DynamoType({"S": "p"}), None, dict(RAW))


@pytest.mark.parametrize(
    "paths",
    [
        [["PK"], ["s"]],
        [["PK"], ["n"], ["e"], ["b"], ["ss"], ["ns"], ["bs"], ["m"], ["l"], ["null"], ["yes"]],
        [["missing"], ["n"]],
        [["yes"], ["PK"]],  # the projection's order, not the item's
        [],
        # moto's own way: a path, a list element
        [["m", "nested"]],
        [["m"], ["m", "nested"]],
        [["l[0]"]],
        [["s"], ["m"], ["s"], ["m"]],  # an index's keys and the table's share a name
    ],
)
def test_a_projection_is_motos(patched: None, paths: list[list[str]]) -> None:
    ours = _item().project(paths)
    theirs = MOTOS_OWN["Item.project"](_item(), paths)
    assert ours.hash_key == theirs.hash_key
    assert ours.range_key == theirs.range_key
    assert list(ours.attrs) == list(theirs.attrs)
    assert ours.to_json() == theirs.to_json()


def _table_with_an_index() -> Any:
    ddb = boto3.resource("dynamodb")
    table = ddb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"},
                   {"AttributeName": "SK", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"},
                              {"AttributeName": "SK", "AttributeType": "S"},
                              {"AttributeName": "tier", "AttributeType": "S"},
                              {"AttributeName": "score", "AttributeType": "N"}],
        GlobalSecondaryIndexes=[{
            "IndexName": "by-tier",
            "KeySchema": [{"AttributeName": "tier", "KeyType": "HASH"},
                          {"AttributeName": "score", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["name", "b"]},
        }],
        BillingMode="PAY_PER_REQUEST",
    )  # fmt: skip
    with table.batch_writer() as batch:
        for n in range(60):
            item: dict[str, Any] = {"PK": f"c{n % 17}", "SK": f"s{n:03d}", "name": f"n{n}",
                                    "b": Binary(bytes([n])), "big": "x" * 50}  # fmt: skip
            if n % 4:  # a sparse index: a quarter of the items are not in it
                item |= {"tier": ["gold", "silver", "10"][n % 3],
                         "score": Decimal(n % 7) / 2}  # fmt: skip
            batch.put_item(Item=item)
    return table


def _motos_table() -> Any:
    return get_backend("dynamodb")["123456789012"]["us-east-1"].tables["t"]


def test_an_index_lists_and_sorts_its_items_as_moto_does(patched: None) -> None:
    _table_with_an_index()
    table = _motos_table()
    ours = table.has_idx_items("by-tier")
    theirs = MOTOS_OWN["Table.has_idx_items"](table, "by-tier")
    assert ours == theirs
    assert 0 < len(ours) < 60
    hash_attrs, range_attrs = ["tier", "PK"], ["score", "SK"]
    ours_sorted = table.sorted_items(hash_attrs, range_attrs, list(ours))
    theirs_sorted = MOTOS_OWN["Table.sorted_items"](table, hash_attrs, range_attrs, list(theirs))
    assert [i.to_json() for i in ours_sorted] == [i.to_json() for i in theirs_sorted]


def test_keys_of_two_types_sort_as_moto_sorts_them(patched: None) -> None:
    _table_with_an_index()
    table = _motos_table()
    items = table.has_idx_items("by-tier")
    items[0].attrs["score"] = dynamo_type.DynamoType({"S": "1"})  # moto does not check types

    def outcome(sort: Any) -> Any:
        try:
            return [i.to_json() for i in sort(table, ["tier", "PK"], ["score", "SK"], list(items))]
        except TypeError as exc:  # a number and a string compared: moto's own error
            return str(exc)

    ours = outcome(type(table).sorted_items)
    assert ours == outcome(MOTOS_OWN["Table.sorted_items"])
    assert "not supported between" in ours


def test_an_index_scan_pages_through_every_projected_item_once(patched: None) -> None:
    table = _table_with_an_index()
    seen: list[dict[str, Any]] = []
    start: dict[str, Any] = {}
    while True:
        page = table.scan(IndexName="by-tier", Limit=7, **start)
        seen += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
    assert len(seen) == 45
    assert {frozenset(i) for i in seen} == {frozenset({"PK", "SK", "tier", "score", "name", "b"})}
    assert len({(i["PK"], i["SK"]) for i in seen}) == 45
    projected = table.scan(ProjectionExpression="PK, #n", ExpressionAttributeNames={"#n": "name"})
    assert all(set(i) == {"PK", "name"} for i in projected["Items"])


@pytest.mark.parametrize("name", sorted(RAW))
def test_an_attributes_size_is_motos(patched: None, name: str) -> None:
    value = dynamo_type.DynamoType(RAW[name])
    assert value.size() == MOTOS_OWN["DynamoType.size"](value)


def test_a_deep_items_size_is_motos(patched: None) -> None:
    deep: dict[str, Any] = {"M": {"leaf": {"N": "123.4500"}, "s": {"SS": ["见", "b"]}}}
    for level in range(6):
        deep = {"M": {f"k{level}": deep, "l": {"L": [deep, {"BOOL": False}, {"NULL": True}]}}}
    value = dynamo_type.DynamoType(deep)
    assert value.size() == MOTOS_OWN["DynamoType.size"](value) > 1000
    item = _item()
    assert sum(v.size() for v in item.attrs.values()) == sum(
        MOTOS_OWN["DynamoType.size"](v) for v in item.attrs.values()
    )
