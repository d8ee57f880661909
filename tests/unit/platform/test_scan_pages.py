"""Scan pages read past botocore's parser give the attribute values botocore would."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer

from crm.aws import scan_page
from crm.dynamo import plain


def test_a_scan_page_as_sent_decodes_as_botocore_parsed_items_do() -> None:
    blob = b"\x00key"
    sent: dict[str, Any] = {
        "Items": [{
            "PK": {"S": "CUST#1"}, "n": {"N": "12.50"}, "ok": {"BOOL": True},
            "none": {"NULL": True}, "m": {"M": {"l": {"L": [{"S": "a"}, {"N": "1"}]}}},
            "b": {"B": base64.b64encode(blob).decode()}, "ss": {"SS": ["x", "y"]},
        }],
        "Count": 1, "ScannedCount": 3, "LastEvaluatedKey": {"PK": {"S": "CUST#1"}},
    }  # fmt: skip
    page = scan_page(json.dumps(sent).encode())
    assert page["Count"] == 1
    assert page["LastEvaluatedKey"] == {"PK": {"S": "CUST#1"}}
    raw = {k: plain(v) for k, v in page["Items"][0].items()}
    parsed = dict(sent["Items"][0], b={"B": blob})  # botocore base64-decodes binaries
    expected = {k: TypeDeserializer().deserialize(v) for k, v in parsed.items()}
    assert isinstance(expected["b"], Binary)
    expected["b"] = bytes(expected["b"])  # type: ignore[call-overload]  # Binary has __bytes__
    assert raw == expected
    assert raw["n"] == Decimal("12.50")
