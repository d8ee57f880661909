"""Batched reads keep to AWS's 100 keys per BatchGetItem and ask again for unprocessed keys."""

from __future__ import annotations

from typing import Any

import pytest

from crm import aws, dynamo
from crm.dynamo import MAX_UNPROCESSED_ROUNDS, UnprocessedKeys, batch_get


class ThrottledTable:
    """Answers the first `throttled` calls with half their keys left unprocessed."""

    def __init__(self, throttled: int) -> None:
        self.throttled = throttled
        self.calls: list[dict[str, Any]] = []

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        ((table, request),) = RequestItems.items()
        self.calls.append(request)
        keys = request["Keys"]
        if len(self.calls) <= self.throttled:
            done, left = keys[: len(keys) // 2], keys[len(keys) // 2 :]
            return {"Responses": {table: done},
                    "UnprocessedKeys": {table: {**request, "Keys": left}}}  # fmt: skip
        return {"Responses": {table: keys}, "UnprocessedKeys": {}}


def keys(n: int) -> list[dict[str, Any]]:
    return [{"PK": {"S": f"CUST#{i}"}, "SK": {"S": "PROFILE"}} for i in range(n)]


def test_at_most_100_keys_per_call_and_duplicates_asked_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = ThrottledTable(throttled=0)
    monkeypatch.setattr(aws, "dynamodb", lambda: table)
    found = batch_get("t", keys(250) + keys(10), projection="PK")
    assert len(found) == 250
    assert [len(c["Keys"]) for c in table.calls] == [100, 100, 50]
    assert all(c["ProjectionExpression"] == "PK" and c["ConsistentRead"] for c in table.calls)


def test_unprocessed_keys_are_asked_again_after_a_jittered_pause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = ThrottledTable(throttled=2)
    monkeypatch.setattr(aws, "dynamodb", lambda: table)
    pauses: list[float] = []
    found = batch_get("t", keys(8), sleep=pauses.append)
    assert sorted(k["PK"]["S"] for k in found) == sorted(k["PK"]["S"] for k in keys(8))
    assert [len(c["Keys"]) for c in table.calls] == [8, 4, 2]
    assert len(pauses) == 2
    assert 0 <= pauses[0] <= dynamo.UNPROCESSED_BACKOFF_S


def test_a_table_that_keeps_refusing_raises_instead_of_spinning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = ThrottledTable(throttled=10**6)
    monkeypatch.setattr(aws, "dynamodb", lambda: table)
    with pytest.raises(UnprocessedKeys):
        batch_get("t", keys(2**12), sleep=lambda _: None)
    assert len(table.calls) == MAX_UNPROCESSED_ROUNDS  # the first chunk of 100 gave up
