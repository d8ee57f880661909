"""Helpers for stores: plain-dict <-> DynamoDB attribute-value conversion, page tokens, and
batched reads within AWS's limits."""

from __future__ import annotations

import base64
import json
import random
import time
from collections.abc import Callable, Mapping, Sequence, Set
from decimal import Clamped, Context, Decimal, Inexact, Overflow, Rounded, Underflow
from typing import Any, NamedTuple

from crm import aws
from crm.errors import FieldProblem, InvalidInput

# AWS limits that moto does not enforce.
MAX_TRANSACT_ITEMS = 100
MAX_TRANSACT_BYTES = 4 * 1024 * 1024
MAX_ITEM_BYTES = 400 * 1024
MAX_BATCH_GET_KEYS = 100
MAX_BATCH_WRITE_ITEMS = 25
# Rounds of asking again for the keys a BatchGetItem left unprocessed (throttling, or a
# response past 16 MB), backing off between them as AWS asks.
MAX_UNPROCESSED_ROUNDS = 8
UNPROCESSED_BACKOFF_S = 0.05


# DynamoDB's numbers: 38 significant digits, magnitudes 1E-130 to 9.9E+125. A number it would
# refuse (or round) is refused here, before any request, as boto3's serializer does.
_NUMBERS = Context(Emin=-128, Emax=126, prec=38,
                   traps=[Clamped, Overflow, Inexact, Rounded, Underflow])  # fmt: skip


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """A plain dict as a DynamoDB item; None values are left out."""
    return {k: attribute(v) for k, v in values.items() if v is not None}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: plain(v) for k, v in item.items()}


def item_bytes(item: Mapping[str, Any]) -> int:
    """An upper bound of an item's size as DynamoDB counts it (names and values): its wire
    form, type tags and quotes included, is never smaller."""
    return len(json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode())


def plain(value: Mapping[str, Any]) -> Any:
    """One attribute value as Python (the inverse of `attribute`). Numbers stay Decimal,
    binaries bytes, sets sets. boto3's TypeDeserializer does the same through a getattr per
    value and wraps binaries in its own `Binary`."""
    kind, inner = next(iter(value.items()))
    if kind == "S":
        return inner
    if kind == "N":
        return Decimal(inner)
    if kind == "M":
        return {k: plain(v) for k, v in inner.items()}
    if kind == "L":
        return [plain(v) for v in inner]
    if kind == "BOOL":
        return inner
    if kind == "NULL":
        return None
    if kind == "SS":
        return set(inner)
    if kind == "NS":
        return {Decimal(n) for n in inner}
    if kind == "B":  # a str when read past botocore's parser (crm.aws.scan_page)
        return base64.b64decode(inner) if isinstance(inner, str) else bytes(inner)
    if kind == "BS":
        return {bytes(b) for b in inner}
    raise TypeError(f"not a DynamoDB attribute value type: {kind}")


def _number(value: int | Decimal | float) -> str:
    # Floats go in by their shortest exact text (0.1 is "0.1", not its binary expansion).
    number = _NUMBERS.create_decimal(repr(value) if isinstance(value, float) else value)
    if not number.is_finite():
        raise TypeError("DynamoDB has no Infinity or NaN")
    return str(number)


def attribute(value: Any) -> dict[str, Any]:
    """A plain value as an attribute value (the inverse of `plain`): str S, bool BOOL, None
    NULL, numbers N (refused when DynamoDB could not hold them exactly), bytes B, dicts M,
    lists and tuples L, sets SS / NS / BS by their members. boto3's TypeSerializer does the
    same through a getattr per value; this is several times faster, which a segment run's
    bulk writes notice, and spares the cold start boto3's import."""
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):
        return {"BOOL": value}
    if value is None:
        return {"NULL": True}
    if isinstance(value, int | Decimal | float):
        return {"N": _number(value)}
    if isinstance(value, dict | Mapping):
        return {"M": {k: attribute(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [attribute(v) for v in value]}
    if isinstance(value, bytes | bytearray):
        return {"B": bytes(value)}
    if isinstance(value, Set):
        if all(isinstance(v, str) for v in value) and value:
            return {"SS": list(value)}
        if all(isinstance(v, int | Decimal) and not isinstance(v, bool) for v in value):
            return {"NS": [_number(v) for v in value]}
        if all(isinstance(v, bytes | bytearray) for v in value):
            return {"BS": [bytes(v) for v in value]}
    raise TypeError(f"no DynamoDB attribute value for {type(value).__name__}")


def encode_page_token(last_key: Mapping[str, Any] | None) -> str | None:
    if not last_key:
        return None
    return base64.urlsafe_b64encode(json.dumps(last_key, sort_keys=True).encode()).decode()


def foreign_page_token() -> InvalidInput:
    return InvalidInput(
        "next_token is not a token this API handed out",
        [FieldProblem("next_token", "not a token of this list")],
    )


def decode_page_token(token: str | None, required_keys: set[str]) -> dict[str, Any] | None:
    if not token:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except ValueError:
        key = None
    if not isinstance(key, dict) or set(key) != required_keys:
        raise foreign_page_token()
    return key


def start_key(key: object, required_keys: set[str], partition: Mapping[str, str]) -> dict[str, str]:
    """The ExclusiveStartKey a client's page token carries, checked before DynamoDB sees it.

    A token is only base64 JSON, so a client can forge one or reuse another list's: DynamoDB
    answers a start key of the wrong types or outside the partition being read with a
    ValidationException (moto does not), which must be the client's 400, not our 500.
    """
    if (
        not isinstance(key, dict)
        or set(key) != required_keys
        or not all(isinstance(value, str) for value in key.values())
        or any(key[name] != value for name, value in partition.items())
    ):
        raise foreign_page_token()
    return key


class ShardedStart(NamedTuple):
    """Where a page of a sharded listing starts: a page token decoded once (shard 0, no key:
    the first page), its parts checked against the list it continues by `sharded_page`."""

    shard: Any
    key: Any

    @classmethod
    def of(cls, page_token: str | None) -> ShardedStart:
        start = decode_page_token(page_token, {"shard", "key"})
        return cls(0, None) if start is None else cls(start["shard"], start["key"])


def sharded_page(
    table: str,
    shards: int,
    partition: Callable[[int], tuple[str, str]],
    key_names: set[str],
    member: Callable[[Mapping[str, Any]], str],
    limit: int,
    start: ShardedStart,
    *,
    index: str | None = None,
    start_fits: Callable[[Mapping[str, str]], bool] | None = None,
) -> tuple[list[str], str | None]:
    """One page of a list written over `shards` partitions (a segment's members), shard after
    shard, each in its sort-key order; the next page's token or None. `partition(k)` is shard
    k's (hash-key attribute, value) in the table or `index`; `key_names` the attributes of a
    LastEvaluatedKey there; `start_fits` what else a token's key must satisfy. The start (a
    page token's, `ShardedStart.of`) is checked before DynamoDB sees it (`start_key`): a
    forged token is the client's 400."""
    shard, last_key = start
    if type(shard) is not int or not 0 <= shard < shards:
        raise foreign_page_token()
    if last_key is not None:
        attribute, value = partition(shard)
        last_key = start_key(last_key, key_names, {attribute: value})
        if start_fits is not None and not start_fits(last_key):
            raise foreign_page_token()
    found: list[str] = []
    while shard < shards and len(found) < limit:
        attribute, value = partition(shard)
        params: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "#k = :k",
            "ExpressionAttributeNames": {"#k": attribute},
            "ExpressionAttributeValues": {":k": {"S": value}},
            "Limit": limit - len(found),
        }
        if index:
            params["IndexName"] = index
        if last_key:
            params["ExclusiveStartKey"] = to_item(last_key)
        out = aws.dynamodb().query(**params)
        found += [member(item) for item in out.get("Items", [])]
        if "LastEvaluatedKey" in out:
            last_key = from_item(out["LastEvaluatedKey"])
        else:
            shard, last_key = shard + 1, None
    if shard >= shards:
        return found, None
    return found, encode_page_token({"shard": shard, "key": last_key})


class UnprocessedItems(Exception):
    """DynamoDB kept leaving writes unprocessed: the table is throttled; try again later."""


def batch_write(
    table: str,
    requests: Sequence[Mapping[str, Any]],
    sleep: Callable[[float], Any] = time.sleep,
    bulk: bool = False,
) -> int:
    """Put and delete requests, 25 per BatchWriteItem (AWS refuses more; moto does not), the
    ones a response leaves unprocessed (throttling) sent again with jittered backoff. `bulk`:
    through the client for background work (crm.aws.dynamodb_bulk). Returns the number of
    BatchWriteItem calls made."""
    client = aws.dynamodb_bulk() if bulk else aws.dynamodb()
    calls = 0
    for start in range(0, len(requests), MAX_BATCH_WRITE_ITEMS):
        pending: Any = {table: list(requests[start : start + MAX_BATCH_WRITE_ITEMS])}
        for n in range(MAX_UNPROCESSED_ROUNDS):
            out = client.batch_write_item(RequestItems=pending)
            calls += 1
            pending = out.get("UnprocessedItems") or {}
            if not pending.get(table):
                break
            if n + 1 == MAX_UNPROCESSED_ROUNDS:
                raise UnprocessedItems(f"{table}: writes still unprocessed after {n + 1} rounds")
            sleep(random.uniform(0, UNPROCESSED_BACKOFF_S * 2**n))  # noqa: S311 - jitter
    return calls


class UnprocessedKeys(Exception):
    """DynamoDB kept leaving keys unprocessed: the table is throttled; try again later."""


def batch_get(
    table: str,
    keys: Sequence[Mapping[str, Any]],
    *,
    projection: str | None = None,
    names: Mapping[str, str] | None = None,
    consistent: bool = True,
    sleep: Callable[[float], Any] = time.sleep,
) -> list[dict[str, Any]]:
    """The items of `keys` that exist, in no particular order: at most 100 keys per
    BatchGetItem, and the keys a response leaves unprocessed asked again with jittered
    backoff."""
    found: list[dict[str, Any]] = []
    unique = list({json.dumps(k, sort_keys=True): k for k in keys}.values())
    for start in range(0, len(unique), MAX_BATCH_GET_KEYS):
        request: dict[str, Any] = {"Keys": unique[start : start + MAX_BATCH_GET_KEYS]}
        request["ConsistentRead"] = consistent
        if projection:
            request["ProjectionExpression"] = projection
        if names:
            request["ExpressionAttributeNames"] = dict(names)
        for n in range(MAX_UNPROCESSED_ROUNDS):
            asked: Any = {table: request}
            out = aws.dynamodb().batch_get_item(RequestItems=asked)
            found.extend(out["Responses"].get(table, []))
            left = (out.get("UnprocessedKeys") or {}).get(table)
            if not left:
                break
            if n + 1 == MAX_UNPROCESSED_ROUNDS:
                raise UnprocessedKeys(f"{table}: keys still unprocessed after {n + 1} rounds")
            request = dict(left)
            sleep(random.uniform(0, UNPROCESSED_BACKOFF_S * 2**n))  # noqa: S311 - jitter
    return found
