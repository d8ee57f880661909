"""The emulator reads DynamoDB attribute values off the wire by hand: for the requests the suite
sends most (writes, transactions, queries, batch reads), it makes of them exactly what moto's
own parser makes, types and order included, and moto no longer walks their shapes. (Every kind
of value written and read back through a table: test_moto_reads.)"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from moto.core import parse as moto_parse
from moto.core.utils import get_service_model

from crm_local import moto_server
from crm_local.moto_server import install_patches

B64 = base64.b64encode(b"\x00\xffbytes").decode()
# Attribute values as they travel: every kind, nested, and the malformed ones moto tolerates.
WIRE_VALUES: dict[str, Any] = {
    "s": {"S": "见面 café"},
    "n": {"N": "-12.50"},
    "b": {"B": B64},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2.5"]},
    "bs": {"BS": [B64, base64.b64encode(b"\x01").decode()]},
    "m": {
        "M": {
            "nested": {
                "L": [
                    {"N": "1"},
                    {"S": "two"},
                    {"NULL": True},
                    {"BOOL": False},
                    {"B": B64},
                    {"M": {}},
                ]
            }
        }
    },
    "l": {"L": []},
    "null": {"NULL": True},
    "yes": {"BOOL": True},
    "two_members": {"S": "x", "N": "1"},
    "unknown_member": {"Q": "x"},
    "null_member": {"S": None},
    "empty": {},
}
KEY = {"PK": {"S": "p"}, "SK": {"B": B64}}
ITEM = {**KEY, **WIRE_VALUES}

REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("PutItem", {"TableName": "t", "Item": ITEM, "ConditionExpression": "attribute_not_exists(PK)",
                 "ExpressionAttributeValues": {":v": WIRE_VALUES["m"]}}),
    ("UpdateItem", {"TableName": "t", "Key": KEY, "UpdateExpression": "SET a = :a, b = :b",
                    "ExpressionAttributeValues": {":a": WIRE_VALUES["l"], ":b": WIRE_VALUES["bs"]},
                    "ReturnValues": "ALL_NEW"}),
    ("DeleteItem", {"TableName": "t", "Key": KEY,
                    "ExpressionAttributeValues": {":n": WIRE_VALUES["n"]},
                    "ConditionExpression": "v = :n"}),
    ("TransactWriteItems", {"TransactItems": [
        {"Put": {"TableName": "t", "Item": ITEM}},
        {"Update": {"TableName": "t", "Key": KEY, "UpdateExpression": "SET v = :v",
                    "ExpressionAttributeValues": {":v": WIRE_VALUES["ns"]}}},
        {"ConditionCheck": {"TableName": "t", "Key": KEY, "ConditionExpression": "v = :v",
                            "ExpressionAttributeValues": {":v": WIRE_VALUES["b"]}}},
        {"Delete": {"TableName": "t", "Key": KEY}},
    ]}),
    ("BatchWriteItem", {"RequestItems": {"t": [{"PutRequest": {"Item": ITEM}},
                                               {"DeleteRequest": {"Key": KEY}}]}}),
    ("GetItem", {"TableName": "t", "Key": KEY, "ConsistentRead": True}),
    ("BatchGetItem", {"RequestItems": {"t": {"Keys": [KEY, KEY], "ProjectionExpression": "PK"}}}),
    ("Query", {"TableName": "t", "KeyConditionExpression": "PK = :p AND SK > :s",
               "ExpressionAttributeValues": {":p": WIRE_VALUES["s"], ":s": WIRE_VALUES["b"]},
               "ExclusiveStartKey": KEY, "Limit": 5, "ScanIndexForward": False}),
    ("Scan", {"TableName": "t", "ExclusiveStartKey": KEY, "Segment": 1, "TotalSegments": 4}),
]  # fmt: skip


def wire(params: dict[str, Any]) -> bytes:
    """The request body as it travels: the values above are already in their wire form."""
    return json.dumps(params).encode()


def parse(operation: str, body: bytes) -> Any:
    model = get_service_model("dynamodb").operation_model(operation)
    parser = moto_parse.JSONParser(model)
    request: Any = {"method": "POST", "values": {}, "headers": {}, "body": body,
               "url_path": "/", "url_params": {}}  # fmt: skip
    return parser.parse(request)


def parsed_by_moto(operation: str, body: bytes) -> Any:
    with pytest.MonkeyPatch.context() as motos:
        own = moto_server.MOTOS_OWN["BaseJSONParser._parse_structure"]
        motos.setattr(moto_parse.BaseJSONParser, "_parse_structure", own)
        return parse(operation, body)


@pytest.mark.parametrize(("operation", "params"), REQUESTS, ids=[op for op, _ in REQUESTS])
def test_requests_parse_as_moto_parses_them(operation: str, params: dict[str, Any]) -> None:
    install_patches()
    body = wire(params)
    ours = parse(operation, body)
    assert repr(ours) == repr(parsed_by_moto(operation, body))  # values, types, key order
    assert ours != params  # binaries were decoded: the comparison saw real parsing


@pytest.mark.parametrize("name", list(WIRE_VALUES))
def test_each_kind_of_value_parses_as_moto_parses_it(name: str) -> None:
    install_patches()
    body = wire({"TableName": "t", "Key": {"v": WIRE_VALUES[name]}})
    assert repr(parse("GetItem", body)) == repr(parsed_by_moto("GetItem", body))


def test_attribute_values_skip_motos_shape_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    install_patches()
    walked = 0
    original: Any = moto_parse.RequestParser._parse_shape

    def counting(self: Any, shape: Any, node: Any) -> Any:
        nonlocal walked
        walked += 1
        return original(self, shape, node)

    monkeypatch.setattr(moto_parse.RequestParser, "_parse_shape", counting)
    item = {f"a{n}": {"M": {"x": {"L": [{"N": str(n)}] * 10}}} for n in range(50)}
    parse("PutItem", wire({"TableName": "t", "Item": item}))
    # The request's members and the item's 50 names and values, not its ~1,000 nested values.
    assert walked < 150
