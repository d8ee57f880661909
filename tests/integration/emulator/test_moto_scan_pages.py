"""The emulator's scan (segments and start keys found without walking the whole table) gives
moto's own pages: the same items, scanned counts and last keys, page after page."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.backends import get_backend
from moto.dynamodb.models.table import Table

from crm_local.moto_server import MOTOS_OWN, install_patches


@pytest.fixture
def table() -> Iterator[Any]:
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
            for n in range(240):
                kind = "PROFILE" if n % 4 == 0 else f"EVT#{n:04d}"
                batch.put_item(Item={"PK": f"C{n % 60:03d}", "SK": kind, "v": Decimal(n)})
        yield get_backend("dynamodb")["123456789012"]["us-east-1"].get_table("t")


def pages(table: Any, scan: Any, **options: Any) -> list[tuple[Any, ...]]:
    out, start = [], None
    while True:
        items, scanned, last = scan(table, {}, 7, start, **options)
        out.append(([i.to_json() for i in items], scanned, last and {**last}))
        if last is None:
            return out
        start = {k: v.to_json() if hasattr(v, "to_json") else v for k, v in last.items()}


@pytest.mark.parametrize("segments", [(None, None), (0, 1), (0, 4), (3, 4), (5, 7)])
def test_every_page_is_motos(table: Any, segments: tuple[Any, Any]) -> None:
    ours = pages(table, Table.scan, segments=segments)
    theirs = pages(table, MOTOS_OWN["Table.scan"], segments=segments)
    assert ours == theirs
    assert len(ours) > 1  # paginated: start keys were used


def test_a_filtered_projected_scan_is_motos(table: Any) -> None:
    client: Any = boto3.client("dynamodb")
    asked: dict[str, Any] = {"TableName": "t", "Segment": 2, "TotalSegments": 3, "Limit": 40,
             "FilterExpression": "SK = :p", "ExpressionAttributeValues": {":p": {"S": "PROFILE"}},
             "ProjectionExpression": "PK, v"}  # fmt: skip
    ours = client.scan(**asked)
    with pytest.MonkeyPatch.context() as motos:
        motos.setattr(Table, "scan", MOTOS_OWN["Table.scan"])
        theirs = client.scan(**asked)
    for answer in (ours, theirs):
        answer.pop("ResponseMetadata")
    assert ours == theirs
    assert ours["ScannedCount"] > ours["Count"] > 0
