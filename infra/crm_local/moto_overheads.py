"""moto's per-request overheads that a profile of the demo loader found, each removed without
changing what moto answers.

Profiled while the demo shop loaded (moto's process, 9,600 requests, 315 profiled seconds):
- finding the backend of each request listed moto's package folder and stat'ed its ~200
  entries, twice per request (36 s). The folder does not change while moto runs: listed once;
- each request turned its action's name into a method name character by character and listed
  the handler class's methods with `inspect` (28 s, with SQS's attribute names below): both are
  pure functions of their argument, remembered;
- SQS read the clock through datetime arithmetic (now, epoch, timedelta) for each message it
  considered, twice (visible, delayed), on every send, receive and count (~55 s). Here the same
  clock reading (milliseconds since the epoch) comes from `time.time()`;
- SQS's GetQueueAttributes computed every attribute of the queue three times per name asked
  (a sweep over all its messages each); here once per request, with the same answer;
- DynamoDB checked an item's 400 KB limit after each attribute it stored by summing the sizes
  of all the attributes stored before it (quadratic in the item's attributes: 37 s for
  profiles). A new item is checked here with a running sum: the same limit, at the same
  attribute, with the same error. Each attribute's size (DynamoType.size) re-wrapped every
  value of a map in a new DynamoType, at every level, to ask its size: computed here from the
  values as they are, by the same rules (moto's number_size and bytesize). Each value is
  wrapped without the two lists per value, at every level, that moto's DynamoType makes to read
  a one-member dict (`_typed`: ~3% of moto's CPU over the demo's imports).

Profiled while the demo's first segment run scanned a sparse index of profiles (its pages):
- an index's projection (and a ProjectionExpression) turned the whole item into plain values,
  once for each attribute projected, to pick that attribute out of it (Item.project): a
  projection of a few attributes of a profile cost a dozen conversions of the whole profile.
  Projections of top-level attributes (an index's keys and included attributes, the usual
  ProjectionExpression) convert each projected attribute once, through the same conversions
  (moto's deserializer and serializer), and make the same item; nested paths and list
  elements go moto's way;
- a scan of an index lists the table's items that have the index's keys, comparing sets of
  attribute names, then sorts them by DynamoType keys, on every page: here the same test and
  the same order (DynamoType compares those very values) without the sets and the wrapper
  objects.

Profiled while the demo's events folded (moto's process, its CPU only):
- EventBridge delivers each event that a rule matches to each target through its input
  transformer, default or declared, and moto compiled each of its JSONPaths (eight for the
  default) with a new parser, which builds its grammar's tables each time: 23% of moto's CPU,
  for the fold's and the profiles' events on the bus. A JSONPath compiles to the same
  expression every time and finding matches does not change it: each is compiled once.

Profiled over the whole demo (moto's process, 98,000 requests):
- every answer carries a request id of 52 random characters (two drawn per request) and every
  SQS message received a receipt handle of 185, each character drawn by its own call of
  `random.choice` (~4% of moto's CPU). The same characters, from the same generator (so a
  seeded moto stays repeatable), are drawn in one `choices` call;
- DeleteMessageBatch went over the queue's messages twice per entry (is the handle known, then
  a new list without its message): ten entries, twenty passes over a queue of hundreds (4%).
  Here one pass finds every entry's message.

Profiled over the whole demo's historical imports (moto's process, cProfile, 2026-12-07):
- every condition expression was lexed and parsed three times per item of a transaction (the
  request's validation, the transaction's check, the put's own check), a regex compile lookup
  per token and pattern: 21% of moto's profiled time, for the same few expressions (the
  imports' `attribute_not_exists(PK)` on every ledger item). A parse is a pure function of the
  expression, its names and its values: remembered (`_remembered_parse`), with the names and
  values it found, which the request's validation reads. An expression moto refuses is
  parsed, and refused, each time;
- a DynamoDB answer (a scan's or query's page above all: the segment run's 88 pages of
  profiles) was turned into plain values by moto's `dynamo_to_dict`, which asks every value of
  every item, at every level, whether it is a datetime, a DynamoType and has a `to_json`
  (~4% of moto's CPU). `_dynamo_to_dict` walks plain dicts, lists, strings and numbers and
  DynamoType's non-binary values directly, to the same result, and hands anything else (binary
  values, datetimes, objects with `to_json`) to moto's.
"""

from __future__ import annotations

import functools
import re
import string
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import jsonpath_ng.ext
from moto import backends
from moto.core import responses as moto_responses
from moto.core.utils import camelcase_to_underscores
from moto.dynamodb import comparisons
from moto.dynamodb import responses as dynamodb_responses
from moto.dynamodb.exceptions import ItemSizeTooLarge
from moto.dynamodb.models import dynamo_type
from moto.dynamodb.models import table as table_module
from moto.dynamodb.models.utilities import bytesize, number_size
from moto.dynamodb.models.utilities import dynamo_to_dict as motos_dynamo_to_dict
from moto.moto_api._internal import mock_random as moto_random_instance
from moto.moto_api._internal import moto_random
from moto.sqs import models as sqs_models
from moto.sqs import utils as sqs_utils
from moto.sqs.exceptions import InvalidAttributeName

RECEIPT_HANDLE_LENGTH = 185  # moto's (sqs.utils.generate_receipt_handle)
ITEM_SIZE_LIMIT = 405000  # moto's own figure (DynamoDB's 400 KB, as measured by moto's authors)


def install(originals: dict[str, Any]) -> None:
    modules = tuple(backends.list_of_moto_modules())

    def list_of_moto_modules() -> Iterable[str]:
        return iter(modules)

    _replace(originals, backends, "list_of_moto_modules", list_of_moto_modules, "backends")
    underscores = functools.lru_cache(maxsize=4096)(camelcase_to_underscores)
    _replace(originals, moto_responses, "camelcase_to_underscores", underscores, "responses")
    _replace(originals, sqs_models, "camelcase_to_underscores", underscores, "sqs")
    method_names = _remembered_by_class(getattr(moto_responses, "method_names_from_class"))  # noqa: B009
    _replace(originals, moto_responses, "method_names_from_class", method_names, "responses")
    clock = _unix_time_millis(getattr(sqs_models, "unix_time_millis"))  # noqa: B009
    _replace(originals, sqs_models, "unix_time_millis", clock, "sqs")
    _replace(originals, sqs_models.SQSBackend, "get_queue_attributes", _get_queue_attributes,
             "SQSBackend")  # fmt: skip
    _replace(originals, sqs_models.SQSBackend, "delete_message_batch", _delete_message_batch,
             "SQSBackend")  # fmt: skip
    _replace(originals, dynamo_type.Item, "__init__", _item_init, "Item")
    _replace(originals, dynamo_type.Item, "project", _project, "Item")
    _replace(originals, dynamo_type.DynamoType, "size", _size, "DynamoType")
    _replace(originals, table_module.Table, "has_idx_items", _has_idx_items, "Table")
    _replace(originals, table_module.Table, "sorted_items", _sorted_items, "Table")
    _replace(originals, moto_random.MotoRandom, "get_random_string", _random_string,
             "MotoRandom")  # fmt: skip
    _replace(originals, sqs_utils, "generate_receipt_handle", _receipt_handle, "sqs.utils")
    _replace(originals, sqs_models, "generate_receipt_handle", _receipt_handle, "sqs")
    # moto.events.utils imports it inside EventTemplateParser.parse, at each call.
    compiled = functools.lru_cache(maxsize=1024)(getattr(jsonpath_ng.ext, "parse"))  # noqa: B009
    _replace(originals, jsonpath_ng.ext, "parse", compiled, "jsonpath_ng.ext")
    parser = comparisons.ConditionExpressionParser
    remembered = _remembered_parse(parser.parse)
    _replace(originals, parser, "parse", remembered, "ConditionExpressionParser")
    _replace(originals, dynamodb_responses, "dynamo_to_dict", _dynamo_to_dict,
             "dynamodb.responses")  # fmt: skip


def _replace(originals: dict[str, Any], owner: Any, name: str, new: Any, label: str) -> None:
    """Put `new` in place of owner.name, keeping moto's own as originals["label.name"]."""
    originals[f"{label}.{name}"] = getattr(owner, name)
    setattr(owner, name, new)


def _random_string(
    self: moto_random.MotoRandom,
    length: int = 20,
    include_digits: bool = True,
    lower_case: bool = False,
) -> str:
    """MotoRandom.get_random_string: the same characters, drawn uniformly from the same
    generator (seeding moto still makes them repeatable), in one call instead of one per
    character."""
    pool = string.ascii_letters + (string.digits if include_digits else "")
    drawn = "".join(self.choices(pool, k=length))
    return drawn.lower() if lower_case else drawn


def _receipt_handle() -> str:
    """sqs.utils.generate_receipt_handle: 185 lowercase letters from moto's generator."""
    return "".join(moto_random_instance.choices(string.ascii_lowercase, k=RECEIPT_HANDLE_LENGTH))


def _remembered_by_class(names: Callable[[object], list[str]]) -> Callable[[object], list[str]]:
    known: dict[object, list[str]] = {}

    def method_names_from_class(clazz: object) -> list[str]:
        found = known.get(clazz)
        if found is None:
            found = known[clazz] = names(clazz)
        return list(found)

    return method_names_from_class


def _unix_time_millis(original: Callable[..., float]) -> Callable[..., float]:
    def unix_time_millis(dt: Any = None) -> float:
        if dt is None:
            return time.time() * 1000.0
        return original(dt)

    return unix_time_millis


def _get_queue_attributes(
    self: sqs_models.SQSBackend, queue_name: str, attribute_names: list[str]
) -> dict[str, Any]:
    """moto's GetQueueAttributes, with the queue's attributes computed once."""
    queue = self.get_queue(queue_name)
    if not attribute_names:
        return {}
    valid_names = ["All", *queue.BASE_ATTRIBUTES, *queue.FIFO_ATTRIBUTES, *queue.KMS_ATTRIBUTES]
    invalid_name = next((name for name in attribute_names if name not in valid_names), None)
    if invalid_name or invalid_name == "":
        raise InvalidAttributeName(invalid_name)
    every = queue.attributes
    if "All" in attribute_names:
        return every
    return {name: every[name] for name in attribute_names if every.get(name) is not None}


def _delete_message_batch(
    self: sqs_models.SQSBackend, queue_name: str, receipts: list[dict[str, Any]]
) -> tuple[list[str], list[dict[str, Any]]]:
    """moto's DeleteMessageBatch in one pass over the queue's messages (moto makes two passes
    per entry); the same entries succeed and fail, in the same order, with the same errors."""
    queue = self.get_queue(queue_name)
    wanted = {r["ReceiptHandle"] for r in receipts} - queue.deleted_messages
    if wanted:
        kept = []
        for message in queue._messages:
            if wanted.isdisjoint(message.all_receipt_handles):
                kept.append(message)
                continue
            queue.pending_messages.discard(message)
            queue.deleted_messages.update(message.all_receipt_handles)  # type: ignore[arg-type]
        queue._messages = kept
    success: list[str] = []
    errors: list[dict[str, Any]] = []
    for receipt in receipts:
        handle = receipt["ReceiptHandle"]
        if handle in queue.deleted_messages:
            success.append(receipt["Id"])
            continue
        why = f'The input receipt handle "{handle}" is not a valid receipt handle.'
        errors.append({"Id": receipt["Id"], "SenderFault": True,
                       "Code": "ReceiptHandleIsInvalid", "Message": why})  # fmt: skip
    return success, errors


def _item_init(
    self: dynamo_type.Item,
    hash_key: dynamo_type.DynamoType,
    range_key: dynamo_type.DynamoType | None,
    attrs: dict[str, Any],
) -> None:
    """moto's Item.__init__ with its size check as a running sum (see the module's doc)."""
    self.hash_key = hash_key
    self.range_key = range_key
    self.attrs = dynamo_type.LimitedSizeDict()
    stored = 0
    for key, value in attrs.items():
        typed = _typed(value)
        size = bytesize(str(key)) + typed.size()
        if stored + size > ITEM_SIZE_LIMIT:
            raise ItemSizeTooLarge
        dict.__setitem__(self.attrs, key, typed)
        stored += size


def _typed(value: Any) -> dynamo_type.DynamoType:
    """DynamoType(value) for an attribute value off the wire (one type, one value), built
    without moto's two lists per value (`list(value)[0]`, `list(value.values())[0]`) at every
    level of its maps and lists: the same type, the same value. Anything else is moto's."""
    if type(value) is not dict or len(value) != 1:
        return dynamo_type.DynamoType(value)
    ((kind, raw),) = value.items()
    typed = dynamo_type.DynamoType.__new__(dynamo_type.DynamoType)
    typed.type = kind
    if kind == "L":  # DynamoType.is_list
        raw = [_typed(v) for v in raw]
    elif kind == "M":  # DynamoType.is_map
        raw = {k: _typed(v) for k, v in raw.items()}
    typed.value = raw
    return typed


_LIST_ELEMENT = re.compile(r"(.+)\[(\d+)\]$")  # what find_nested_key reads as a list element


def _project(self: dynamo_type.Item, projection_expressions: list[list[str]]) -> dynamo_type.Item:
    """moto's Item.project, converting only the projected attributes (see the module's doc)."""
    names = [path[0] for path in projection_expressions if len(path) == 1]
    if len(names) != len(projection_expressions) or any(_LIST_ELEMENT.match(n) for n in names):
        return MOTOS_PROJECT(self, projection_expressions)
    # A name twice (an index's keys and the table's share SK) merges a value into its equal.
    names = list(dict.fromkeys(names))
    result = {
        name: dynamo_type.deserializer.deserialize(self.attrs[name].to_regular_json())
        for name in names
        if name in self.attrs
    }
    return dynamo_type.Item(
        hash_key=self.hash_key,
        range_key=self.range_key,
        attrs=dict(dynamo_type.serializer.serialize(result)["M"]),
    )


MOTOS_PROJECT = dynamo_type.Item.project


def _has_idx_items(self: table_module.Table, index_name: str) -> list[dynamo_type.Item]:
    """moto's Table.has_idx_items: the items holding every key attribute of the index."""
    index = self.get_index(index_name)
    columns = {key["AttributeName"] for key in index.schema}
    items: list[dynamo_type.Item] = []
    for hash_set in self.items.values():
        candidates: Any = hash_set.values() if self.range_key_attr else (hash_set,)
        items.extend(item for item in candidates if columns <= item.attrs.keys())
    return items


def _sorted_items(
    self: table_module.Table,
    hash_key_attrs: list[str],
    range_key_attrs: list[str | None],
    items: list[dynamo_type.Item],
) -> list[dynamo_type.Item]:
    """moto's Table.sorted_items, comparing the values DynamoType compares (in place, stable)."""
    attrs_to_sort_by = self._generate_attr_to_sort_by(hash_key_attrs, range_key_attrs)
    types: set[tuple[str, ...]] = set()
    keys: dict[int, tuple[Any, ...]] = {}
    for item in items:
        values = [item.attrs[name] for name in attrs_to_sort_by]
        types.add(tuple(value.type for value in values))
        keys[id(item)] = tuple(_compared_value(value) for value in values)
    if len(types) > 1:  # a key of two types: DynamoType's own comparisons decide
        return MOTOS_SORTED_ITEMS(self, hash_key_attrs, range_key_attrs, items)
    items.sort(key=lambda item: keys[id(item)])
    return items


MOTOS_SORTED_ITEMS = table_module.Table.sorted_items


def _compared_value(value: dynamo_type.DynamoType) -> Any:
    """What DynamoType's comparisons compare: its value for strings and binaries, else the
    value cast (a number as a number)."""
    return value.value if value.type in ("S", "B") else value.cast_value


def _size(self: dynamo_type.DynamoType) -> int:
    """moto's DynamoType.size, without wrapping each value of a map again."""
    return _value_size(self.type, self.value)


def _value_size(kind: str, value: Any) -> int:
    if kind == "N":
        return number_size(str(value))
    if kind in ("SS", "NS", "BS"):
        return sum(_value_size(kind[0], one) for one in value)
    if kind == "L":
        return sum(one.size() for one in value)
    if kind == "M":
        return sum(bytesize(key) + _size_of(one) for key, one in value.items())
    if isinstance(value, bool):
        return 1
    return bytesize(value)


def _size_of(value: Any) -> int:
    """DynamoType(value).size(), for a DynamoType or the dict of one."""
    if type(value) is dynamo_type.DynamoType:
        return _value_size(value.type, value.value)
    return dynamo_type.DynamoType(value).size()


# distinct (expression, names, values) remembered: a transaction's few dozen are read 3 times
PARSES_REMEMBERED = 4096
_Parsed = tuple[Any, tuple[str, ...], tuple[str, ...]]


def _frozen(value: Any) -> Any:
    """A request's expression attribute names or values as a hashable key, equal only for
    equal values of the same types (True and 1, or a list and a tuple, stay apart)."""
    if isinstance(value, dict):
        return ("M", tuple((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("L", tuple(_frozen(v) for v in value))
    return (type(value).__name__, value)


# Every `:name` in an expression, as moto's lexer reads an operand's characters (its
# `(:|#)?[A-z0-9\-_]+`): the values a parse can look up, and maybe a few more.
_VALUE_NAME = re.compile(r":[A-z0-9\-_]+")
_NOT_GIVEN = ("not given",)  # a name the request's values lack: moto's parse refuses it


def _remembered_parse(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """ConditionExpressionParser.parse, its answer remembered by expression, names and the
    values the expression names (a transaction item's values include its update's, which
    differ from one customer to the next where its condition's do not).

    The syntax tree holds nothing but what those three give it (the values by reference, and
    moto reads them, never changes them); the parser's record of the names and values it found
    (the request's validation reads it) is replayed on a hit. Errors are not remembered."""
    remembered: dict[Any, _Parsed] = {}

    def remembered_parse(self: Any) -> Any:
        try:
            expr, values = self.condition_expression, self.expression_attribute_values
            if expr and values:  # only the values it names: a request's others vary more
                values = {name: values.get(name, _NOT_GIVEN)
                          for name in _VALUE_NAME.findall(expr)}  # fmt: skip
            key = (expr, _frozen(self.expression_attribute_names), _frozen(values))
            hash(key)
        except TypeError:  # a value moto would not expect; parsed its way
            return parse(self)
        hit = remembered.get(key)
        if hit is None:
            names_before = len(self.expr_attr_names_found)
            values_before = len(self.expr_attr_values_found)
            op = parse(self)
            if len(remembered) >= PARSES_REMEMBERED:
                remembered.clear()  # a bound, not an LRU: the working set is far smaller
            remembered[key] = (op, tuple(self.expr_attr_names_found[names_before:]),
                               tuple(self.expr_attr_values_found[values_before:]))  # fmt: skip
            return op
        op, names_found, values_found = hit
        self.expr_attr_names_found.extend(names_found)
        self.expr_attr_values_found.extend(values_found)
        return op

    return remembered_parse


# Values that moto's dynamo_to_dict gives back as they are (no datetime, no `to_json`).
_AS_THEY_ARE = frozenset({str, int, float, bool, type(None), bytes, Decimal})
_BINARY = frozenset({"B", "BS"})


def _dynamo_to_dict(obj: Any) -> Any:
    """moto's dynamo_to_dict, without its questions for the values whose answer is known by
    their exact type (see the module's doc)."""
    kind = type(obj)
    if kind is dict or kind is dynamo_type.LimitedSizeDict:  # an item's attributes: no to_json
        return {k: _dynamo_to_dict(v) for k, v in obj.items()}
    if kind is list:
        return [_dynamo_to_dict(v) for v in obj]
    if kind in _AS_THEY_ARE:
        return obj
    if kind is dynamo_type.DynamoType and obj.type not in _BINARY:
        return {obj.type: _dynamo_to_dict(obj.value)}
    return motos_dynamo_to_dict(obj)
