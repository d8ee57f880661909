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
  attribute, with the same error.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable
from typing import Any

from moto import backends
from moto.core import responses as moto_responses
from moto.core.utils import camelcase_to_underscores
from moto.dynamodb.exceptions import ItemSizeTooLarge
from moto.dynamodb.models import dynamo_type
from moto.dynamodb.models.utilities import bytesize
from moto.sqs import models as sqs_models
from moto.sqs.exceptions import InvalidAttributeName

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
    _replace(originals, dynamo_type.Item, "__init__", _item_init, "Item")


def _replace(originals: dict[str, Any], owner: Any, name: str, new: Any, label: str) -> None:
    """Put `new` in place of owner.name, keeping moto's own as originals["label.name"]."""
    originals[f"{label}.{name}"] = getattr(owner, name)
    setattr(owner, name, new)


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
        typed = dynamo_type.DynamoType(value)
        size = bytesize(str(key)) + typed.size()
        if stored + size > ITEM_SIZE_LIMIT:
            raise ItemSizeTooLarge
        dict.__setitem__(self.attrs, key, typed)
        stored += size
