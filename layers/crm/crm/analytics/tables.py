"""The lake's tables as the metric SQL sees them: one fixed schema per table, the same in
Parquet, in the Glue catalogue (template.yaml) and in the embedded engine.

The lake's JSON Lines differ by event type (an order has items, a view a SKU); `normalize`
turns each raw row into its table's flat columns, so compaction (to Parquet) and the embedded
engine (reading a day not compacted yet) read the JSON the same way. Every table is partitioned
by `type` and `dt` (the day, UTC); an order's items are a table of their own (`order_items`) so
that no metric needs a dialect's own way to unnest an array.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# column name -> Glue/Athena type; pyarrow's are derived from these (crm.analytics.parquet)
Columns = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Table:
    name: str
    source: str  # the lake prefix its JSON Lines are under
    columns: Columns
    key: str  # the column a redelivered duplicate repeats: one row per value is kept
    types: tuple[str, ...]  # the `type` partition's values (Athena's partition projection)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)


EVENTS = Table(
    "events",
    "events",
    (
        ("event_id", "string"), ("customer_pid", "string"), ("occurred_at", "timestamp"),
        ("channel", "string"), ("order_id", "string"), ("amount", "double"),
        ("currency", "string"), ("sku", "string"), ("category", "string"),
        ("quantity", "bigint"), ("case_kind", "string"), ("status", "string"),
        ("reason_code", "string"), ("store_id", "string"),
    ),
    "event_id",
    ("product_viewed", "search", "cart_added", "order_placed", "order_paid", "order_refunded",
     "after_sales"),
)  # fmt: skip
ORDER_ITEMS = Table(
    "order_items",
    "events",
    (
        ("item_id", "string"), ("event_id", "string"), ("order_id", "string"),
        ("customer_pid", "string"), ("occurred_at", "timestamp"), ("channel", "string"),
        ("sku", "string"), ("category", "string"), ("quantity", "bigint"),
        ("unit_price", "double"),
    ),
    "item_id",
    ("order_placed", "order_paid", "order_refunded"),
)  # fmt: skip
CAMPAIGN_FACTS = Table(
    "campaign_facts",
    "campaign_facts",
    (
        ("fact_id", "string"), ("customer_pid", "string"), ("occurred_at", "timestamp"),
        ("campaign_id", "string"), ("variant", "string"), ("arm", "string"),
        ("channel", "string"), ("reason", "string"), ("revenue", "double"),
        ("cost", "double"),
    ),
    "fact_id",
    ("sent", "suppressed", "exposure", "conversion"),
)  # fmt: skip
TICKET_FACTS = Table(
    "ticket_facts",
    "ticket_facts",
    (
        ("fact_id", "string"), ("ticket_id", "string"), ("customer_pid", "string"),
        ("occurred_at", "timestamp"), ("category", "string"), ("priority", "string"),
        ("channel", "string"), ("metric", "string"), ("seconds", "double"),
    ),
    "fact_id",
    ("opened", "first_response", "resolved", "breached", "escalated"),
)  # fmt: skip
SEGMENT_SCORES = Table(
    "segment_scores",
    "segment_scores",
    (
        ("score_id", "string"), ("run_id", "string"), ("customer_pid", "string"),
        ("tier", "string"), ("rfm_segment", "string"), ("p_alive", "double"),
        ("clv_12m", "double"), ("churn_warning", "boolean"),
    ),
    "score_id",
    ("scores",),
)  # fmt: skip

TABLES = (EVENTS, ORDER_ITEMS, CAMPAIGN_FACTS, TICKET_FACTS, SEGMENT_SCORES)
BY_NAME = {table.name: table for table in TABLES}
ORDER_TYPES = ("order_placed", "order_paid", "order_refunded")
SCORES_TYPE = "scores"  # segment_scores' one type: a run's snapshot, partitioned by its day


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


def _whole(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


def _time(value: Any) -> datetime:
    """A naive UTC datetime (Parquet's timestamp without zone, as Athena reads it)."""
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at


def run_day(run_id: str) -> str:
    """A segment run's day from its id (20261106T020000123456Z-abcdef -> 2026-11-06)."""
    return f"{run_id[0:4]}-{run_id[4:6]}-{run_id[6:8]}"


def event_rows(raw: Mapping[str, Any]) -> Iterator[tuple[Table, dict[str, Any]]]:
    """A lake event as its `events` row and, for an order, one `order_items` row per item."""
    items = raw.get("items") or []
    category = raw.get("category")
    if category is None and items:
        # An order's category, for filters on the events table, is its first item's (as the
        # profile timeline shows it); per-category metrics read order_items.
        category = items[0].get("category")
    at = _time(raw["occurred_at"])
    yield EVENTS, {
        "event_id": str(raw["event_id"]), "customer_pid": _text(raw.get("customer_pid")),
        "occurred_at": at, "channel": _text(raw.get("channel")),
        "order_id": _text(raw.get("order_id")), "amount": _number(raw.get("amount")),
        "currency": _text(raw.get("currency")), "sku": _text(raw.get("sku")),
        "category": _text(category), "quantity": _whole(raw.get("quantity")),
        "case_kind": _text(raw.get("case")), "status": _text(raw.get("status")),
        "reason_code": _text(raw.get("reason_code")), "store_id": _text(raw.get("store_id")),
    }  # fmt: skip
    for position, item in enumerate(items):
        yield ORDER_ITEMS, {
            "item_id": f"{raw['event_id']}#{position}", "event_id": str(raw["event_id"]),
            "order_id": _text(raw.get("order_id")), "customer_pid": _text(raw.get("customer_pid")),
            "occurred_at": at, "channel": _text(raw.get("channel")), "sku": _text(item.get("sku")),
            "category": _text(item.get("category")), "quantity": _whole(item.get("quantity")),
            "unit_price": _number(item.get("unit_price")),
        }  # fmt: skip


def fact_row(table: Table, raw: Mapping[str, Any]) -> dict[str, Any]:
    """A campaign, ticket or segment-score row: the table's columns, missing ones null."""
    row: dict[str, Any] = {}
    for name, kind in table.columns:
        value = raw.get(name)
        if kind == "timestamp":
            row[name] = _time(value)
        elif kind == "double":
            row[name] = _number(value)
        elif kind == "bigint":
            row[name] = _whole(value)
        elif kind == "boolean":
            row[name] = None if value is None else bool(value)
        else:
            row[name] = _text(value)
    return row


def normalize(
    source: str, raw_rows: Iterable[Mapping[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """The rows of one lake source's JSON as table name -> rows, duplicates (a redelivered
    batch's repeated rows) kept once by the table's key."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for raw in raw_rows:
        if source == "events":
            pairs: Iterable[tuple[Table, dict[str, Any]]] = event_rows(raw)
        elif source == "segment_scores":
            scored = dict(raw)
            scored["score_id"] = f"{raw.get('run_id')}#{raw.get('customer_pid')}"
            pairs = [(SEGMENT_SCORES, fact_row(SEGMENT_SCORES, scored))]
        else:
            table = BY_NAME[source]
            pairs = [(table, fact_row(table, raw))]
        for table, row in pairs:
            out.setdefault(table.name, {})[str(row[table.key])] = row
    return {name: list(rows.values()) for name, rows in out.items()}
