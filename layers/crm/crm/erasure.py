"""Helpers the families' personal-data stores share (platform): finding a data subject's
identifiers in stored values, reading whole partitions and scanning a table page by page, and
deleting items within AWS's limits. Reads are consistent where DynamoDB allows it, so a
verification right after an erasure sees it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crm import aws
from crm.dynamo import batch_write, plain
from crm.personal_data import DataSubject, Remnant

# An identifier counts where it stands as a whole token: `CUST#<id>`, `<journey>#<id>#3` and
# `order:<id>` hold it; `u-10` does not hold `u-1`.
_EDGE = r"[A-Za-z0-9_-]"


@dataclass(frozen=True)
class Identifiers:
    """A subject's identifiers as patterns, each with the kind a remnant names."""

    patterns: tuple[tuple[re.Pattern[str], str], ...]

    @classmethod
    def of(cls, subject: DataSubject, *, customer_ids_only: bool = False) -> Identifiers:
        kinds: list[tuple[str, str]] = [(subject.customer_id, "customer_id")]
        kinds += [(merged, "customer_id") for merged in subject.merged_ids]
        if not customer_ids_only:
            kinds.append((subject.pseudonym, "pseudonym"))
            kinds += [(token, "blind_index") for token in subject.blind_indexes]
            kinds += [(external, "external_id") for external in subject.external_ids]
        return cls.named(kinds)

    @classmethod
    def named(cls, kinds: Iterable[tuple[str, str]]) -> Identifiers:
        patterns = tuple(
            (re.compile(f"(?<!{_EDGE}){re.escape(value)}(?!{_EDGE})"), kind)
            for value, kind in kinds
            if value
        )
        return cls(patterns)

    def find(self, value: Any) -> str | None:
        """The kind of the first identifier any string inside `value` holds, else None."""
        for text in _strings(value):
            for pattern, kind in self.patterns:
                if pattern.search(text):
                    return kind
        return None


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, inner in value.items():
            yield str(key)
            yield from _strings(inner)
    elif isinstance(value, list | tuple | set | frozenset):
        for inner in value:
            yield from _strings(inner)


def key_of(item: Mapping[str, Any]) -> dict[str, Any]:
    """The primary key (PK, SK) of a raw item."""
    return {"PK": item["PK"], "SK": item["SK"]}


def location(table: str, item: Mapping[str, Any]) -> str:
    """Where a raw item is: table and key, for a remnant (keys hold ids, never PII)."""
    return f"{table}/{item['PK']['S']}/{item['SK']['S']}"


def query_partition(
    table: str,
    pk: str,
    *,
    sk_prefix: str | None = None,
    index: str | None = None,
    hash_key: str = "PK",
    range_key: str = "SK",
) -> list[dict[str, Any]]:
    """Every item of one partition (optionally of an index, or under a sort-key prefix),
    following pages; consistent on the table (an index cannot be)."""
    params: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "#h = :h",
        "ExpressionAttributeNames": {"#h": hash_key},
        "ExpressionAttributeValues": {":h": {"S": pk}},
    }
    if sk_prefix is not None:
        params["KeyConditionExpression"] += " AND begins_with(#r, :r)"
        params["ExpressionAttributeNames"]["#r"] = range_key
        params["ExpressionAttributeValues"][":r"] = {"S": sk_prefix}
    if index:
        params["IndexName"] = index
    else:
        params["ConsistentRead"] = True
    found: list[dict[str, Any]] = []
    while True:
        out = aws.dynamodb().query(**params)
        found.extend(out.get("Items", []))
        last = out.get("LastEvaluatedKey")
        if not last:
            return found
        params["ExclusiveStartKey"] = last


def scan_items(table: str, page_size: int = 500) -> Iterator[dict[str, Any]]:
    """Every item of a table, page by page (consistent): a whole-table read, for the stores
    whose items carry a customer's id in no key a query can reach, and for verification."""
    params: dict[str, Any] = {"TableName": table, "ConsistentRead": True, "Limit": page_size}
    while True:
        out = aws.dynamodb_bulk().scan(**params)
        yield from out.get("Items", [])
        last = out.get("LastEvaluatedKey")
        if not last:
            return
        params["ExclusiveStartKey"] = last


def mentioning(
    items: Iterable[Mapping[str, Any]], identifiers: Identifiers
) -> Iterator[tuple[dict[str, Any], str]]:
    """The raw items that hold one of the identifiers anywhere (keys or values), with its
    kind."""
    for item in items:
        kind = identifiers.find({name: plain(value) for name, value in item.items()})
        if kind is not None:
            yield dict(item), kind


def delete_items(table: str, keys: Sequence[Mapping[str, Any]]) -> int:
    """Deletes these keys, 25 per BatchWriteItem (deleting a missing key is a no-op, so an
    erasure run again changes nothing); returns how many were asked."""
    unique = list({location(table, key): dict(key) for key in keys}.values())
    batch_write(table, [{"DeleteRequest": {"Key": key}} for key in unique])
    return len(unique)


def remnants(
    table: str, found: Iterable[tuple[Mapping[str, Any], str]], kind_of: Any
) -> tuple[Remnant, ...]:
    """Remnants for raw items found holding an identifier; `kind_of(item)` names the item's
    kind (`profile`, `message`, ...)."""
    return tuple(
        Remnant(kind=kind_of(item), location=location(table, item), identifier_kind=identifier)
        for item, identifier in found
    )
