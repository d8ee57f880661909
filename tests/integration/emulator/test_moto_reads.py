"""The emulator's faster DynamoDB reads (items written as JSON directly, scans sorted by plain
key values) give moto's answers: every kind of attribute value comes back as it went in, and
a paginated parallel scan returns every item once, in key order."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import Binary
from moto import mock_aws

from crm_local.moto_server import install_patches

EVERY_KIND: dict[str, Any] = {
    "s": "见面 café",
    "n": Decimal("-12.50"),
    "big": Decimal("12345678901234567890.123"),
    "b": Binary(b"\x00\xffbytes"),
    "ss": {"a", "b"},
    "ns": {Decimal(1), Decimal("2.5")},
    "bs": {Binary(b"\x01"), Binary(b"\x02")},
    "m": {"nested": {"list": [1, "two", None, True, Binary(b"\x03")]}},
    "l": [],
    "null": None,
    "yes": True,
    "no": False,
}


@pytest.fixture
def table() -> Iterator[Any]:
    install_patches()
    with mock_aws():
        resource = boto3.resource("dynamodb")
        yield resource.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"},
                       {"AttributeName": "SK", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"},
                                  {"AttributeName": "SK", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )  # fmt: skip


def test_every_kind_of_attribute_value_reads_back_as_written(table: Any) -> None:
    item = {"PK": "p", "SK": "s", **EVERY_KIND}
    table.put_item(Item=item)
    assert table.get_item(Key={"PK": "p", "SK": "s"})["Item"] == item
    assert table.scan()["Items"] == [item]
    assert table.query(KeyConditionExpression="PK = :p",
                       ExpressionAttributeValues={":p": "p"})["Items"] == [item]  # fmt: skip
    got = boto3.resource("dynamodb").batch_get_item(
        RequestItems={"t": {"Keys": [{"PK": "p", "SK": "s"}]}}
    )
    assert got["Responses"]["t"] == [item]
    old = table.put_item(Item={"PK": "p", "SK": "s", "s": "new"}, ReturnValues="ALL_OLD")
    assert old["Attributes"] == item
    new = table.update_item(Key={"PK": "p", "SK": "s"}, UpdateExpression="SET b = :b",
                            ExpressionAttributeValues={":b": Binary(b"\x04")},
                            ReturnValues="ALL_NEW")  # fmt: skip
    assert new["Attributes"] == {"PK": "p", "SK": "s", "s": "new", "b": Binary(b"\x04")}


def test_a_paginated_parallel_scan_returns_every_item_once_in_key_order(table: Any) -> None:
    client = boto3.client("dynamodb")
    keys = [(f"P{n % 37:03d}", f"S{n:04d}") for n in range(300)]
    with table.batch_writer() as batch:
        for pk, sk in keys:
            batch.put_item(Item={"PK": pk, "SK": sk, "v": Decimal(len(sk))})
    found: list[tuple[str, str]] = []
    for segment in range(4):
        params: dict[str, Any] = {"TableName": "t", "Segment": segment, "TotalSegments": 4,
                                  "Limit": 7}  # fmt: skip
        pages = []
        while True:
            out = client.scan(**params)
            pages.append([(i["PK"]["S"], i["SK"]["S"]) for i in out["Items"]])
            if "LastEvaluatedKey" not in out:
                break
            params["ExclusiveStartKey"] = out["LastEvaluatedKey"]
        in_segment = [key for page in pages for key in page]
        assert in_segment == sorted(in_segment)
        assert max(len(page) for page in pages) <= 7
        found += in_segment
    assert sorted(found) == sorted(keys)


def test_items_skip_motos_generic_serializer(table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """It walks botocore's shape of every attribute value: ~10 ms a profile-sized item."""
    from moto.core import serialize

    with table.batch_writer() as batch:
        for n in range(50):
            batch.put_item(Item={"PK": f"p{n}", "SK": "s", **EVERY_KIND})
    walked = 0
    original = serialize.ResponseSerializer._serialize

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal walked
        walked += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(serialize.ResponseSerializer, "_serialize", counting)
    assert len(table.scan()["Items"]) == 50
    assert walked < 10  # the answer's envelope (Count, ScannedCount), not 50 items' values
