"""moto as the emulator's AWS: a server on 127.0.0.1, made fit for a running shop.

What moto does not do for a long-running server with real traffic, done here:
- requests are served one at a time: moto's models are not thread-safe (a TransactWriteItems
  iterating a table while another request writes to it fails), and Lambda's concurrency is
  ours to emulate, not moto's;
- TransactWriteItems deep-copies every table it touches, once per item, to roll back on
  failure, which makes each transaction cost as much as the whole table. Here only the items
  the transaction names are saved and restored. The outcome (all or nothing, the same errors)
  is moto's own;
- DynamoDB answers are written by moto's generic serializer, which walks botocore's shape of
  every attribute value: ~10 ms for each profile a page holds, so a scan page of a few hundred
  profiles took seconds while every other request waited behind it. Here the items of a read
  are written as JSON directly (attribute values are already in their wire form; binary ones
  in base64, as the serializer writes them) and the rest of the answer by moto;
- the same walk reads every request: attribute values are read off the wire by hand instead
  (crm_local.dynamodb_wire), to what moto's parser makes of them;
- a query of a table lists and sorts every item of the table to keep one partition's: here
  it is given that partition only (`_query`); a query of a global index, the items that hold
  the asked index key, found by reading that one attribute of each item (`_index_partition`);
- a scan sorts every item of the table on each request (each page of each segment), comparing
  keys through DynamoType's methods; here each item's key is computed once and the sort
  compares plain values, in the same order (DynamoType compares exactly those values);
- a scan of an index does the same walk over the index's items and deep-copies each item of
  the page whole before projecting it (the segment runs' scans of the `scoring` index): here
  partitions outside the segment are skipped and a page's items share the stored values
  (`_index_scan`);
- SQS computes a queue's attributes, three passes over all its messages, for every message it
  sends or considers receiving, so both cost the square of the queue's length. Here the
  retention check reads the one attribute it needs, and the approximate counts (approximate in
  AWS too) are counted in one pass and kept for a tenth of a second;
- per-request overheads a profile of the demo loader found (finding the backend, naming the
  action, SQS's clock, DynamoDB's item size check): crm_local.moto_overheads.
"""

from __future__ import annotations

import base64
import copy
import cProfile
import inspect
import io
import itertools
import json
import logging
import multiprocessing
import os
import signal
import threading
import time
import types
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from moto.core.parse import BaseJSONParser
from moto.core.responses import ActionResult
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.table import RESULT_SIZE_LIMIT, Table
from moto.dynamodb.responses import DynamoResult
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.sqs import models as sqs_models
from moto.utilities.utils import md5_hash
from werkzeug.serving import make_server

from crm_local import moto_overheads
from crm_local.dynamodb_wire import attribute_value
from crm_local.sqs import VISIBLE_MESSAGES_PATH

# The functions moto_overheads and this module replaced, by name (the tests compare with them).
MOTOS_OWN: dict[str, Any] = {}
# `CRM_LOCAL_PROFILE=folder crm-local up` profiles moto's handling of every request and writes
# folder/moto.prof when the emulator stops (python -m pstats folder/moto.prof).
PROFILE_ENV = "CRM_LOCAL_PROFILE"
log = logging.getLogger("crm_local.moto")

_installed = False
_SCAN_SIGNATURE = inspect.signature(Table.scan)


def _table_aware_deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
    if isinstance(value, Table):
        return value  # rollback is done item by item, see _transact_write_items
    return copy.deepcopy(value, memo)


def _item_key(table: Table, op: dict[str, Any]) -> tuple[DynamoType, DynamoType | None]:
    key = op.get("Key") or op.get("Item") or {}
    hash_value = DynamoType(key[table.hash_key_attr])
    range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
    return hash_value, range_value


def _snapshot(table: Table, hash_value: DynamoType, range_value: DynamoType | None) -> Any:
    if range_value is None:
        return copy.deepcopy(table.items.get(hash_value))
    return copy.deepcopy(table.items.get(hash_value, {}).get(range_value))


def _restore(
    table: Table, hash_value: DynamoType, range_value: DynamoType | None, old: Any
) -> None:
    if range_value is None:
        if old is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = old
        return
    if old is None:
        table.items.get(hash_value, {}).pop(range_value, None)
    else:
        table.items[hash_value][range_value] = old


def install_patches() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    shim = types.SimpleNamespace(deepcopy=_table_aware_deepcopy, copy=copy.copy)
    setattr(dynamodb_models, "copy", shim)  # noqa: B010 - replaces the module's `copy` import
    original = dynamodb_models.DynamoDBBackend.transact_write_items

    def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = []
        for entry in transact_items:
            op = next(iter(entry.values()))
            table = self.tables.get(op.get("TableName"))
            if table is None:
                continue
            try:
                hash_value, range_value = _item_key(table, op)
            except KeyError:
                continue  # moto reports the malformed key itself
            saved.append((table, hash_value, range_value,
                          _snapshot(table, hash_value, range_value)))  # fmt: skip
        try:
            original(self, transact_items)
        except Exception:
            for table, hash_value, range_value, old in reversed(saved):
                _restore(table, hash_value, range_value, old)
            raise

    dynamodb_models.DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
    Table.all_items = _all_items  # type: ignore[method-assign]
    MOTOS_OWN["Table.scan"] = Table.scan
    Table.scan = _scan  # type: ignore[method-assign]
    MOTOS_OWN["Table.query"] = Table.query
    Table.query = _query  # type: ignore[method-assign]
    written_by_moto = DynamoResult.execute_result

    def _execute_result(self: ActionResult, context: Any) -> Any:
        result = self.result
        held_keys = _ITEM_MEMBERS.get(str(context.operation_model.name), ())
        if not isinstance(result, dict) or not any(k in result for k in held_keys):
            return written_by_moto(self, context)
        held = {k: result[k] for k in held_keys if k in result}
        rest = ActionResult({k: v for k, v in result.items() if k not in held})
        status, headers, body = written_by_moto(rest, context)
        answer = {**json.loads(body or "{}"), **held}
        return status, headers, json.dumps(answer, default=_base64)

    DynamoResult.execute_result = _execute_result  # type: ignore[method-assign]
    parse_structure: Any = BaseJSONParser._parse_structure

    def _parse_structure(self: BaseJSONParser, shape: Any, value: Any) -> Any:
        if shape.name == "AttributeValue" and _is_dynamodb(self.operation_model):
            return attribute_value(value)
        return parse_structure(self, shape, value)

    MOTOS_OWN["BaseJSONParser._parse_structure"] = parse_structure
    BaseJSONParser._parse_structure = _parse_structure  # type: ignore[method-assign]
    moto_overheads.install(MOTOS_OWN)

    def _within_retention(self: Any, queue_name: str, message: Any) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > time.time())

    sqs_models.SQSBackend.is_message_valid_based_on_retention_period = _within_retention  # type: ignore[method-assign]
    queue_class: Any = sqs_models.Queue
    queue_class.approximate_number_of_messages = property(lambda q: _counts(q)[0])
    queue_class.approximate_number_of_messages_delayed = property(lambda q: _counts(q)[1])
    queue_class.approximate_number_of_messages_not_visible = property(lambda q: _counts(q)[2])


# The members of DynamoDB's answers that hold items or keys (attribute values, and nothing else).
_ITEM_MEMBERS = {
    "Scan": ("Items", "LastEvaluatedKey"),
    "Query": ("Items", "LastEvaluatedKey"),
    "GetItem": ("Item",),
    "BatchGetItem": ("Responses",),
    "PutItem": ("Attributes",),
    "UpdateItem": ("Attributes",),
    "DeleteItem": ("Attributes",),
}


def _is_dynamodb(operation: Any) -> bool:
    return bool(operation.service_model.service_name == "dynamodb")


def _base64(value: Any) -> str:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not an attribute value")


# The items a scan or query of this thread is given in place of the whole table (`_over`).
# Thread-local: moto serves requests on several threads (the emulator's server, the tests' and
# benchmarks' concurrent dispatch), and an attribute set on the shared Table would leak into, or
# be deleted under, another thread's request.
_given = threading.local()


def _all_items(self: Table) -> list[Any]:
    """Table.all_items, sorted by the values its DynamoType keys compare by; the items a scan
    or query of this thread was given, if any (`_over`)."""
    given = getattr(_given, "items", None)
    if given is not None and given[0] is self:
        return list(given[1])
    return _in_key_order(_items_of(self))


def _over(table: Table, items: list[Any], run: Callable[[], Any]) -> Any:
    """moto's own scan or query of `table`, over `items` only, on this thread."""
    outer = getattr(_given, "items", None)
    _given.items = (table, items)
    try:
        return run()
    finally:
        _given.items = outer


def _items_of(table: Table) -> list[Any]:
    items: list[Any] = []
    for hash_set in table.items.values():
        if table.range_key_attr:
            items.extend(hash_set.values())
        else:
            items.append(hash_set)
    return items


def _compared_by(value: Any) -> Any:
    """DynamoType.cast_value, read directly for strings and binaries (their value itself)."""
    return value.value if value.type in ("S", "B") else value.cast_value


def _in_key_order(items: list[Any]) -> list[Any]:
    def key(item: Any) -> Any:
        if item.range_key:
            return (_compared_by(item.hash_key), _compared_by(item.range_key))
        return _compared_by(item.hash_key)

    return sorted(items, key=key)


def _scan(self: Table, *args: Any, **kwargs: Any) -> Any:
    """Table.scan, given only the items of the segment that follow the page's start key.

    moto walks every item of the table on every page: past the items of other segments (an md5
    of each hash key) and, one comparison each, past the pages already read, which makes a
    parallel scan cost pages x table size. Here each hash key's segment is computed once, the
    start key is found by bisection in the sorted items (the walk's test is monotone in that
    order), and moto's own scan runs over what is left, as a scan of the whole table from its
    start: the same items, counts and last key."""
    bound = _SCAN_SIGNATURE.bind(self, *args, **kwargs)
    bound.apply_defaults()
    call = bound.arguments
    segments, start = call["segments"], call["exclusive_start_key"]
    if call["index_name"]:
        if call["consistent_read"] or call["filters"]:
            return MOTOS_OWN["Table.scan"](*bound.args, **bound.kwargs)  # moto's checks, rare
        return _index_scan(self, call)
    if segments == (None, None) and start is None:
        return MOTOS_OWN["Table.scan"](*bound.args, **bound.kwargs)
    items = _items_of(self)
    if segments != (None, None):  # keys are unique: the segment's items sort as they did
        items = [item for item in items if _in_segment(item, segments)]
    items = _in_key_order(items)
    if start is not None:
        hash_attrs, range_attrs = [self.hash_key_attr], [self.range_key_attr]

        def at_or_before(n: int) -> bool:
            return bool(self._item_comes_before_dct(items[n], start, hash_attrs, range_attrs, True))

        low, high = 0, len(items)
        while low < high:
            middle = (low + high) // 2
            if at_or_before(middle):
                low = middle + 1
            else:
                high = middle
        items = items[low:]
    call["segments"], call["exclusive_start_key"] = (None, None), None
    return _over(self, items, lambda: MOTOS_OWN["Table.scan"](*bound.args, **bound.kwargs))


def _index_scan(self: Table, call: dict[str, Any]) -> Any:
    """Table.scan of an index: moto's pages, without walking the table twice and copying every
    item whole on each page.

    moto lists every item of the table that has the index's keys, sorts them all, walks them from
    the first (an md5 of each hash key for its segment, a comparison with the start key each)
    and deep-copies each item of the page before projecting it: a page of the segment runs' scan
    of the `scoring` index cost ~0.4 s of moto's one-at-a-time server, most of it copying and
    converting profiles whole (the demo's segment run reads 88 pages). Here a partition outside
    the segment is skipped by its hash key (its md5 remembered), the start key is found by
    bisection in moto's own order, and a page's items are projected by sharing the stored
    attribute values (the answer is converted to plain values as soon as it is written, so
    nothing can change them). The page ends where moto's would (the limit, or 1 MB of whole
    items), then moto's filter and projection expressions apply as in its scan."""
    index = self.get_index(call["index_name"], error_if_not=True)
    index_hash = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"]
    if not index_hash:
        return MOTOS_OWN["Table.scan"](**call)  # moto's error for a malformed index
    index_range = [k["AttributeName"] for k in index.schema if k["KeyType"] == "RANGE"]
    hash_attrs = [index_hash[0], self.hash_key_attr]
    range_attrs = [index_range[0], self.range_key_attr] if index_range else [self.range_key_attr]
    columns = set(index.schema_key_attrs)
    segments = call["segments"]
    held_by: Any = self.items.values()
    if segments != (None, None):
        held_by = [self.items[h] for h in _partitions_in_segment(self, *segments)]
    items: list[Any] = []
    for held in held_by:
        candidates: Any = held.values() if self.range_key_attr else (held,)
        items.extend(item for item in candidates if columns <= item.attrs.keys())
    items = self.sorted_items(hash_attrs, range_attrs, items)
    start = call["exclusive_start_key"]
    if start is not None:
        low, high = 0, len(items)
        while low < high:
            middle = (low + high) // 2
            if self._item_comes_before_dct(items[middle], start, hash_attrs, range_attrs, True):
                low = middle + 1
            else:
                high = middle
        items = items[low:]
    limit = call["limit"]
    results: list[Any] = []
    result_size = scanned_count = 0
    last_evaluated_key = None
    for item in items:
        size = item.size()
        if len(results) == limit or result_size + size > RESULT_SIZE_LIMIT:
            last_evaluated_key = self._get_last_evaluated_key(results[-1], call["index_name"])
            break
        results.append(_projected(index, item))
        result_size += size
        scanned_count += 1
    if call["filter_expression"] is not None:
        results = [item for item in results if call["filter_expression"].expr(item)]
    if call["projection_expression"]:
        results = [r.project(call["projection_expression"]) for r in results]
    return results, scanned_count, last_evaluated_key


# The hash keys of each scan segment of a table with a sort key, by (id of its items, segments):
# (the items, how many partitions were seen, the hash keys of each segment). Such a table never
# drops a partition (moto empties it), so a partition set that changed has grown, and its new
# keys are the last in the dict's order: a page lists its segment's partitions without walking
# the table's thousands of others (the customers table holds a partition per ledger event).
_segment_partitions: dict[tuple[int, int], tuple[Any, int, list[list[DynamoType]]]] = {}
_segment_partitions_lock = threading.Lock()


def _partitions_in_segment(table: Table, segment: int, total: int) -> list[DynamoType]:
    """The hash keys of `table` in scan segment `segment` of `total`, in the table's order."""
    if not table.range_key_attr:  # a table without a sort key drops partitions: walk it
        return [h for h in list(table.items) if _hash_in_segment(h, (segment, total))]
    key = (id(table.items), total)
    with _segment_partitions_lock:
        held, seen, by_segment = _segment_partitions.get(key, (None, 0, []))
        if held is not table.items:
            held, seen, by_segment = table.items, 0, [[] for _ in range(total)]
        if len(held) != seen:
            for hash_value in itertools.islice(list(held), seen, None):
                owner = next(n for n in range(total) if _hash_in_segment(hash_value, (n, total)))
                by_segment[owner].append(hash_value)
            seen = len(held)
            _segment_partitions[key] = (held, seen, by_segment)
        return list(by_segment[segment])


def _projected(index: Any, item: Any) -> Any:
    """SecondaryIndex.project of a copy of the item, sharing the item's attribute values."""
    projection = (index.projection or {}).get("ProjectionType")
    if projection in ("KEYS_ONLY", "INCLUDE"):
        kept = [*index.table_key_attrs, *index.schema_key_attrs]
        if projection == "INCLUDE":
            kept += index.projection.get("NonKeyAttributes", [])
        attrs = {name: item.attrs[name] for name in dict.fromkeys(kept) if name in item.attrs}
    else:  # ALL (or none given): the whole item
        attrs = dict(item.attrs)
    view: Any = Item.__new__(Item)  # Item(...) would wrap every value again and re-check its size
    view.hash_key, view.range_key = item.hash_key, item.range_key
    view.attrs = LimitedSizeDict()
    dict.update(view.attrs, attrs)
    return view


_QUERY_SIGNATURE = inspect.signature(Table.query)


def _query(self: Table, *args: Any, **kwargs: Any) -> Any:
    """Table.query of the table itself (not an index), given only the items of the asked
    partition.

    moto lists every item of the table, sorted, on every query, and keeps those whose hash key
    equals the one asked: a query cost as much as a scan of the table (the demo's fold and its
    readers query the customers table ~20,000 times; 16% of moto's CPU). The table's items are
    held by hash key already (DynamoType hashes and compares the same way, by type and value),
    so moto's own query runs here over that one partition, in the same order: the same items,
    counts and last key."""
    bound = _QUERY_SIGNATURE.bind(self, *args, **kwargs)
    bound.apply_defaults()
    hash_key = bound.arguments["hash_key"]
    if bound.arguments["index_name"] and hash_key is not None:
        indexed = _index_partition(self, bound.arguments["index_name"], hash_key,
                                   bound.arguments["hash_key_conditions"])  # fmt: skip
        if indexed is None:
            return MOTOS_OWN["Table.query"](*bound.args, **bound.kwargs)
        return _over(self, indexed,
                     lambda: MOTOS_OWN["Table.query"](*bound.args, **bound.kwargs))  # fmt: skip
    if bound.arguments["index_name"] or hash_key is None:
        return MOTOS_OWN["Table.query"](*bound.args, **bound.kwargs)
    held = self.items.get(hash_key)
    if held is None:
        partition: list[Any] = []
    elif self.range_key_attr:
        partition = _in_key_order(list(held.values()))
    else:
        partition = [held]
    return _over(self, partition, lambda: MOTOS_OWN["Table.query"](*bound.args, **bound.kwargs))


def _index_partition(
    table: Table, index_name: str, hash_key: Any, conditions: list[tuple[str, Any]] | None
) -> list[Any] | None:
    """The items of the table whose index hash key is the one asked, in the table's key order,
    for moto's own query of a global index to run over (None: leave the query to moto whole).

    moto sorts every item of the table on each query of an index and then compares each with
    the asked key (the member indexes' listing of a tier: 16 queries a page, each as costly as
    sorting the whole customers table). Here the walk reads one attribute of each item; moto
    then keeps, sorts and pages the same items it would have kept from the whole table."""
    index = next((i for i in table.global_indexes if i.name == index_name), None)
    if index is None:
        return None
    hashes = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"]
    if len(hashes) != 1 or any(name != hashes[0] for name, _ in conditions or ()):
        return None
    name = hashes[0]
    found = []
    for held in table.items.values():
        candidates: Any = held.values() if table.range_key_attr else (held,)
        for item in candidates:
            value = item.attrs.get(name)
            if value is not None and value == hash_key:
                found.append(item)
    return _in_key_order(found)


_segment_of: dict[str, int] = {}


def _in_segment(item: Any, segments: tuple[int, int]) -> bool:
    """DynamoType.is_within_segment, its md5 remembered by hash key."""
    return _hash_in_segment(item.hash_key, segments)


def _hash_in_segment(hash_key: DynamoType, segments: tuple[int, int]) -> bool:
    """Whether the items of this hash key are in the scan segment (Item.is_within_segment)."""
    value = hash_key.value
    if not isinstance(value, str):
        probe: Any = Item.__new__(Item)
        probe.hash_key = hash_key
        return bool(probe.is_within_segment(segments))
    bucket = _segment_of.get(value)
    if bucket is None:
        bucket = _segment_of[value] = md5_hash(value.encode("utf8")).digest()[0]
    segment, total = segments
    return segment == bucket % total


COUNTS_TTL_S = 0.1


def _counts(queue: Any) -> tuple[int, int, int]:
    """(visible, delayed, in flight) of an SQS queue, in one pass."""
    cached = queue.__dict__.get("_crm_counts")
    now = time.monotonic()
    if cached and now - cached[0] < COUNTS_TTL_S:
        return cached[1]  # type: ignore[no-any-return]
    visible = delayed = in_flight = 0
    clock = time.time() * 1000.0  # Message.visible and .delayed, read once for all
    for message in queue._messages:
        is_delayed = clock < message.delayed_until
        if is_delayed:
            delayed += 1
        if not clock > message.visible_at:
            in_flight += 1
        elif not is_delayed:
            visible += 1
    counts = (visible, delayed, in_flight)
    queue.__dict__["_crm_counts"] = (now, counts)
    return counts


def visible_messages() -> dict[str, int]:
    """The visible messages of every queue, by name (the emulator runs one account and region):
    what the pump's watcher asks for, in one request, instead of a receive of each idle queue."""
    return {
        name: _counts(queue)[0]
        for regions in sqs_models.sqs_backends.values()
        for backend in regions.values()
        for name, queue in backend.queues.items()
    }


class _Serialized:
    """WSGI middleware: one request at a time through moto (profiled, when asked)."""

    def __init__(
        self, app: Callable[..., Iterable[bytes]], profile: cProfile.Profile | None = None
    ) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.profile = profile
        self.requests = 0  # served so far: a periodic save skips a state nothing touched

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("PATH_INFO") == VISIBLE_MESSAGES_PATH and environ["REQUEST_METHOD"] == "GET":
            with self.lock:
                body = json.dumps(visible_messages()).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        with self.lock:
            self.requests += 1
            if self.profile is None:
                return list(self.app(environ, start_response))
            self.profile.enable()
            try:
                return list(self.app(environ, start_response))
            finally:
                self.profile.disable()


class _KeepAliveHandler(MotoRequestHandler):
    """Keeps boto3's pooled connections open: one TCP connection per client thread instead of
    a handshake, a server thread started and a 10 ms drain per request.

    werkzeug's server answers every request with `Connection: close` (it cannot tell where a
    request's body ends when the application leaves it unread) and then waits for stray bytes
    before closing. A profile of the demo loader found moto's process spending more time on
    that (threads started, sockets drained, headers flushed) than in moto. Here a request whose
    body has a Content-Length is read whole before moto sees it, so the next request starts
    exactly after it (an S3 upload's `Expect: 100-continue` is answered first, as werkzeug
    does), and the answer is sent with its length, headers and body in one write (no Nagle
    delay between two small writes). Anything else (a chunked upload, an error) goes
    werkzeug's way and closes the connection. What moto answers is unchanged:
    the same application, environ, status, headers (but Connection) and body."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def run_wsgi(self) -> None:
        length = self.headers.get("Content-Length")
        expect = (self.headers.get("Expect") or "").strip().lower()
        if (
            self.headers.get("Transfer-Encoding")
            or expect not in ("", "100-continue")
            or (length is None and self.command not in ("GET", "HEAD", "DELETE", "OPTIONS"))
            or not (length or "0").isdigit()
        ):
            self.close_connection = True
            super().run_wsgi()
            return
        if expect:  # S3 uploads ask first, as werkzeug answers them
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = self.rfile.read(int(length or 0))
        environ = self.make_environ()
        environ["wsgi.input"] = io.BytesIO(body)
        answer: list[Any] = []

        def start_response(status: str, headers: list[Any], exc_info: Any = None) -> Any:
            answer[:] = [status, headers]
            return None

        try:
            data = b"".join(self.server.app(environ, start_response))
        except Exception:
            self.close_connection = True
            log.exception("moto failed a request")
            self.send_error(500)
            return
        status, headers = answer
        code, _, message = status.partition(" ")
        self.send_response(int(code), message)
        is_head = self.command == "HEAD"
        for name, value in headers:
            if name.lower() == "connection" or (name.lower() == "content-length" and not is_head):
                continue
            self.send_header(name, value)
        if not is_head:
            self.send_header("Content-Length", str(len(data)))
            self._headers_buffer.append(b"\r\n" + data)  # one write: headers and body
            self.flush_headers()
        else:
            self.end_headers()
        self.wfile.flush()


class LocalMotoServer(ThreadedMotoServer):
    def __init__(self, port: int = 0, profile: cProfile.Profile | None = None) -> None:
        super().__init__(ip_address="127.0.0.1", port=port, verbose=False)
        self.profile = profile
        install_patches()

    def _server_entry(self) -> None:
        app = _Serialized(DomainDispatcherApplication(create_backend_app), self.profile)
        self.app = app
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=_KeepAliveHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()

    @property
    def endpoint(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"


# A running emulator saves its state this often when it served requests since the last save,
# so a kill -9 (or a frozen process) loses minutes, not the session.
SAVE_EVERY_S = 120.0


class MotoProcess:
    """The moto server in a process of its own, so AWS's side and the functions' side of the
    emulator each have a core; it restores the saved state at start, saves it when asked
    (`save`: once the demo has loaded, or at once when none loads), from then on every
    SAVE_EVERY_S while it changes, and at stop."""

    def __init__(
        self,
        port: int,
        state_dir: Path,
        persist: bool,
        fresh_data: bool = False,
        save_every_s: float = SAVE_EVERY_S,
    ) -> None:
        self.port, self.state_dir, self.persist = port, state_dir, persist
        self.fresh_data, self.save_every_s = fresh_data, save_every_s
        self.endpoint = ""
        self.restored = False
        self._asking = threading.Lock()  # one question on the pipe at a time (save, stop)

    def start(self) -> MotoProcess:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve,
            args=(
                self.port,
                self.state_dir,
                self.persist,
                self.fresh_data,
                self.save_every_s,
                child,
            ),
            daemon=True,
        )
        self._process.start()
        self.endpoint, self.restored = self._conn.recv()
        return self

    def save(self) -> None:
        """Save the state now (a no-op without persistence)."""
        self._ask("save")

    def stop(self) -> None:
        self._ask("stop")
        self._process.join(timeout=30)

    def _ask(self, message: str) -> None:
        """Send `message` and wait until the state is saved (a moto process that is gone
        answers nothing)."""
        with self._asking:
            try:
                self._conn.send(message)
                self._conn.recv()  # saved
            except (EOFError, OSError):
                pass


def _serve(
    port: int,
    state_dir: Path,
    persist: bool,
    fresh_data: bool,
    save_every_s: float,
    conn: Connection,
) -> None:
    # Ctrl-C reaches the whole process group; the parent decides when moto stops and saves.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from crm_local.state import ACCOUNT_SERVICES, SERVICES, restore_state, save_state

    services = ACCOUNT_SERVICES if fresh_data else SERVICES
    restored = persist and restore_state(state_dir, services)
    profile_dir = os.environ.get(PROFILE_ENV)
    profile = cProfile.Profile() if profile_dir else None
    server = LocalMotoServer(port, profile)
    server.start()
    conn.send((server.endpoint, restored))
    saved_at = -1

    def save() -> None:
        nonlocal saved_at
        if not persist:
            return
        with server.app.lock:  # between requests: a state no request is halfway through
            save_state(state_dir)
            saved_at = server.app.requests

    # Saving on its own starts with the first save asked for: after the demo loaded (a state
    # saved halfway through loading would hold half a demo the next run does not load again).
    autosave = False
    try:
        while True:
            if not conn.poll(save_every_s):
                if autosave and server.app.requests != saved_at:
                    save()
                continue
            if conn.recv() != "save":
                break
            save()
            autosave = True
            conn.send("saved")
    except (EOFError, OSError):
        return  # the parent is gone: what it did since the last save is not wanted
    save()
    if profile is not None and profile_dir:
        profile.dump_stats(Path(profile_dir) / "moto.prof")
    conn.send("saved")
    server.stop()
