"""crm.dynamo converts items as boto3's TypeSerializer and TypeDeserializer do (the layer does
not import boto3), and refuses what DynamoDB could not hold exactly, as they do."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from hypothesis import given, settings
from hypothesis import strategies as st

from crm.dynamo import attribute, from_item, to_item

# What stores write: text, whole and decimal numbers (within DynamoDB's range), booleans,
# None, bytes, and lists, maps and sets of them.
_numbers = st.integers(min_value=-(10**37), max_value=10**37) | st.decimals(
    allow_nan=False, allow_infinity=False, places=6, min_value=-(10**20), max_value=10**20
)
_scalars = st.text(max_size=8) | _numbers | st.booleans() | st.none() | st.binary(max_size=8)
_sets = (
    st.frozensets(st.text(min_size=1, max_size=4), min_size=1, max_size=4)
    | st.frozensets(st.integers(-1000, 1000), min_size=1, max_size=4)
    | st.frozensets(st.binary(min_size=1, max_size=4), min_size=1, max_size=4)
)


def _nested(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)


_values = st.recursive(_scalars | _sets, _nested, max_leaves=12)


def _boto3_plain(value: Any) -> Any:
    """boto3's deserialized value with its Binary wrappers as bytes (crm.dynamo's form)."""
    if isinstance(value, Binary):
        return bytes(value)  # type: ignore[call-overload]  # Binary has __bytes__
    if isinstance(value, dict):
        return {k: _boto3_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_boto3_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return {_boto3_plain(v) for v in value}
    return value


def _sorted_sets(value: Any) -> Any:
    """Attribute values with set members in one order (sets have none)."""
    if isinstance(value, dict):
        return {k: sorted(v) if k in ("SS", "NS", "BS") else _sorted_sets(v)
                for k, v in value.items()}  # fmt: skip
    if isinstance(value, list):
        return [_sorted_sets(v) for v in value]
    return value


@settings(max_examples=300, deadline=None)
@given(_values)
def test_a_value_converts_as_boto3_converts_it(value: Any) -> None:
    ours: Any = attribute(value)
    assert _sorted_sets(ours) == _sorted_sets(TypeSerializer().serialize(value))
    assert from_item({"v": ours}) == {"v": _boto3_plain(TypeDeserializer().deserialize(ours))}


def test_an_item_leaves_out_none_and_writes_floats_by_their_shortest_text() -> None:
    item = to_item({"PK": "CUST#1", "gone": None, "p": 0.1, "n": [None, 2]})
    assert item == {
        "PK": {"S": "CUST#1"},
        "p": {"N": "0.1"},
        "n": {"L": [{"NULL": True}, {"N": "2"}]},
    }
    assert from_item(item) == {"PK": "CUST#1", "p": Decimal("0.1"), "n": [None, 2]}


@pytest.mark.parametrize(
    "number",
    [
        Decimal("1e-200"),  # far below DynamoDB's smallest magnitude
        Decimal("1e127"),  # above its largest
        10**38 + 1,  # more than 38 significant digits
        1e-308,
    ],
)
def test_a_number_dynamodb_cannot_hold_is_refused_as_boto3_refuses_it(number: Any) -> None:
    with pytest.raises(ArithmeticError):
        attribute(number)
    with pytest.raises(ArithmeticError):
        TypeSerializer().serialize(Decimal(repr(number)) if isinstance(number, float) else number)


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), float("inf"), object()])
def test_what_dynamodb_has_no_type_for_is_a_type_error(value: Any) -> None:
    with pytest.raises(TypeError):
        attribute(value)
