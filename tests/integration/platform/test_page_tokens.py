"""A next_token is only base64 JSON: a forged one, or one from another list, is the client's
400 naming next_token, never a DynamoDB ValidationException (a 500 in AWS; moto is lenient and
would even page another customer's ledger from it)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from crm_local.harness import Suite


def token(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def customer(suite: Suite, name: str, earnings: int = 0) -> str:
    body = {"identities": [{"channel": "app", "external_id": name}]}
    customer_id: str = suite.call("POST", "/customers", body).body["customer_id"]
    for n in range(earnings):
        change = {"txn_id": f"{name}-{n}", "kind": "earn", "points": 5}
        assert suite.call("POST", f"/customers/{customer_id}/points", change).status == 200
    return customer_id


def refused(reply: Any) -> bool:
    fields = [f["field"] for f in reply.body["error"].get("fields", [])]
    return bool(reply.status == 400 and fields == ["next_token"])


def test_a_points_token_pages_its_own_ledger_only(suite: Suite) -> None:
    alice, bob = customer(suite, "alice", earnings=3), customer(suite, "bob", earnings=1)
    first = suite.call("GET", f"/customers/{alice}/points", query={"limit": "1"})
    real = first.body["next_token"]
    second = suite.call("GET", f"/customers/{alice}/points", query={"next_token": real})
    assert second.status == 200
    assert len(second.body["entries"]) == 2

    assert refused(suite.call("GET", f"/customers/{bob}/points", query={"next_token": real}))
    key = json.loads(base64.urlsafe_b64decode(real))
    forged = [
        {**key, "TPK": f"PTS#{bob}"},  # the right shape, another customer's partition
        {name: {"S": value} for name, value in key.items()},  # not strings
        dict.fromkeys(key, 7),
        {"PK": "x"},
        [1, 2],
    ]
    for key_ in forged:
        reply = suite.call("GET", f"/customers/{alice}/points", query={"next_token": token(key_)})
        assert refused(reply), key_
    assert refused(suite.call("GET", f"/customers/{alice}/points", query={"next_token": "%%"}))


@pytest.mark.parametrize(
    "key",
    [
        {"shard": "1", "key": None},
        {"shard": -1, "key": None},
        {"shard": True, "key": None},
        {"shard": 99, "key": None},
        {"shard": 1, "key": "c1"},
        {"shard": 1, "key": {"PK": "SEG#tier:new#01", "SK": "c1"}},  # another segment's
        {"shard": 1, "key": {"PK": "SEG#tier:high_value#02", "SK": "c1"}},  # another shard's
        {"shard": 1, "key": {"PK": "SEG#tier:high_value#01", "SK": 1}},
    ],
)
def test_a_members_token_pages_its_own_segment_only(suite: Suite, key: Any) -> None:
    path = "/segments/tier:high_value/members"
    assert refused(suite.call("GET", path, query={"next_token": token(key)}))


def test_members_tokens_the_api_hands_out_are_taken(suite: Suite) -> None:
    path = "/segments/tier:high_value/members"
    for key in ({"shard": 3, "key": None}, {"shard": 1, "key": {"PK": "SEG#tier:high_value#01",
                                                                "SK": "c1"}}):  # fmt: skip
        assert suite.call("GET", path, query={"next_token": token(key)}).status == 200


@pytest.mark.parametrize("limit", ["²", "١٢", "-1", "0", "101", "1.5", " 5", ""])
def test_a_limit_is_a_whole_number_in_its_range_or_a_400(suite: Suite, limit: str) -> None:
    someone = customer(suite, "carol")
    reply = suite.call("GET", f"/customers/{someone}/points", query={"limit": limit})
    assert reply.status == 400
    assert reply.body["error"]["fields"] == [{"field": "limit", "message": "out of range"}]
