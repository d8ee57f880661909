"""DynamoDB's attribute values read off the wire by hand, where moto's generic parser walks
botocore's shape of every one.

moto parses each request by walking the operation's input shape node by node: for an
attribute value, a lookup of each of its ten possible members and a handler found by name for
each present one. A profile written by a fold (a TransactWriteItems of a few hundred values)
spent most of its time there. What the walk makes of an attribute value is simple: strings,
numbers, booleans and null as they came, binaries base64-decoded, sets and lists as lists, maps
as dicts of their parsed values; members it does not know are dropped, absent and null ones
left out. `attribute_value` does exactly that; anything that is not an attribute value still
goes through moto's walk.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

# botocore's AttributeValue members, in the order moto's parser visits them.
MEMBERS = ("S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL")


def _same(raw: Any) -> Any:
    return raw


def _strings(raw: Any) -> list[Any]:
    return list(raw)


def _binaries(raw: Any) -> list[bytes]:
    return [base64.b64decode(one) for one in raw]


def _map(raw: Any) -> dict[Any, Any]:
    return {key: attribute_value(value) for key, value in raw.items()}


def _list(raw: Any) -> list[Any]:
    return [attribute_value(value) for value in raw]


_PARSE: dict[str, Callable[[Any], Any]] = {
    "S": _same,
    "N": _same,
    "B": base64.b64decode,
    "SS": _strings,
    "NS": _strings,
    "BS": _binaries,
    "M": _map,
    "L": _list,
    "NULL": _same,
    "BOOL": _same,
}


def attribute_value(value: Any) -> Any:
    """What moto's JSON parser makes of one AttributeValue."""
    if value is None:
        return None
    if len(value) == 1:  # the usual case: one member
        ((name, raw),) = value.items()
        parse = _PARSE.get(name)
        if parse is None or raw is None:
            return {}
        return {name: parse(raw)}
    parsed = {}
    for name in MEMBERS:
        raw = value.get(name)
        if raw is not None:
            parsed[name] = _PARSE[name](raw)
    return parsed
