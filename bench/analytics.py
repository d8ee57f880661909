"""The analytics metrics on the embedded engine at 1M and 10M events, and the bytes Athena would
scan for one dashboard view (`python -m bench.analytics [events ...]`).

The lake is generated as Parquet directly (the layout compaction writes), not through the
emulator: a year of a shop's events, their order items, campaign and ticket facts and four
weekly segment runs. DuckDB runs every metric's SQL over the files, as the local API does. The
bytes Athena scans are counted from the Parquet footers: for each table a metric reads, the
compressed size of the columns it names, in the partitions its `type` and `dt` conditions leave
(partition projection prunes the rest); Athena bills at least 10 MB a query.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp

from crm.analytics.engine import duckdb_parquet_rows
from crm.analytics.metrics import METRICS
from crm.analytics.parquet import schema
from crm.analytics.service import metric_sql, parse_query
from crm.analytics.tables import BY_NAME, CAMPAIGN_FACTS, EVENTS, ORDER_ITEMS, SEGMENT_SCORES
from crm.analytics.tables import TICKET_FACTS as TICKETS
from crm_local.template import ROOT

END = date(2026, 11, 30)
DAYS = 365
EVENTS_PER_CUSTOMER = 10
TYPES = ["product_viewed", "search", "cart_added", "order_placed", "order_paid",
         "order_refunded", "after_sales"]  # fmt: skip
SHARES = [0.60, 0.10, 0.15, 0.07, 0.06, 0.005, 0.015]
CHANNELS = np.array(["app", "mini_program", "wechat", "douyin", "store"])
CATEGORIES = np.array(["shoes", "bags", "apparel", "beauty", "home", "digital", "food", "toys"])
BILLED_MIN = 10 * 1024 * 1024
OUT = ROOT / "docs" / "benchmarks.md"
BEGIN, END_MARK = "<!-- bench.analytics: begin -->", "<!-- bench.analytics: end -->"


def _write(root: Path, table: str, kind: str, day: str, data: dict[str, object]) -> None:
    folder = root / table / f"type={kind}" / f"dt={day}"
    folder.mkdir(parents=True, exist_ok=True)
    arrow = pa.table(data).cast(schema(BY_NAME[table]))
    pq.write_table(arrow, folder / "part-0000.parquet", compression="snappy")


def _pids(rng: np.random.Generator, customers: int, n: int) -> np.ndarray:
    # 32 hex characters, as the lake's pseudonyms; a few customers buy often (Zipf-like)
    ids = (rng.pareto(1.2, n) * customers / 20).astype(np.int64) % customers
    return np.char.mod("%032x", ids)


def generate(root: Path, events: int, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    customers = max(events // EVENTS_PER_CUSTOMER, 1)
    per_day = events // DAYS
    for d in range(DAYS):
        day = END - timedelta(days=DAYS - 1 - d)
        base = np.datetime64(day.isoformat(), "ms")
        counts = rng.multinomial(per_day, SHARES)
        for kind, n in zip(TYPES, counts, strict=True):
            if not n:
                continue
            at = base + rng.integers(0, 86_400_000, n).astype("timedelta64[ms]")
            pid = _pids(rng, customers, n)
            channel = CHANNELS[rng.integers(0, len(CHANNELS), n)]
            category = CATEGORIES[rng.integers(0, len(CATEGORIES), n)]
            ids = np.char.add(f"{day.isoformat()}-{kind}-", np.arange(n).astype(str))
            order = kind.startswith("order")
            orders = np.char.add("o-", (rng.integers(0, events, n)).astype(str))
            amount = np.round(rng.gamma(2.0, 80.0, n), 2)
            row = {c: pa.nulls(n) for c, _ in EVENTS.columns}
            row |= {"event_id": ids, "customer_pid": pid, "occurred_at": at, "channel": channel,
                    "category": category}  # fmt: skip
            if order or kind == "after_sales":
                row["order_id"] = orders
            if order:
                row |= {"amount": amount, "currency": np.full(n, "CNY")}
                items = {c: pa.nulls(n) for c, _ in ORDER_ITEMS.columns}
                items |= {"item_id": np.char.add(ids, "#0"), "event_id": ids, "order_id": orders,
                          "customer_pid": pid, "occurred_at": at, "channel": channel,
                          "sku": np.char.add("sku-", rng.integers(0, 5000, n).astype(str)),
                          "category": category, "quantity": rng.integers(1, 4, n),
                          "unit_price": amount}  # fmt: skip
                _write(root, "order_items", kind, day.isoformat(), items)
            if kind == "after_sales":
                row["case_kind"] = np.array(["return", "complaint", "refund_only"])[
                    rng.integers(0, 3, n)]  # fmt: skip
                row["reason_code"] = np.array(["size", "quality", "late_delivery"])[
                    rng.integers(0, 3, n)]  # fmt: skip
            _write(root, "events", kind, day.isoformat(), row)
        _campaign_day(root, rng, day, customers, per_day // 10)
        _ticket_day(root, rng, day, customers, max(per_day // 200, 1))
    for week in range(4):
        run_day = END - timedelta(days=7 * week)
        run = run_day.strftime("%Y%m%dT020000000000Z") + "-bench0"
        n = customers
        scores = {c: pa.nulls(n) for c, _ in SEGMENT_SCORES.columns}
        scores |= {"score_id": np.char.add(f"{run}#", np.arange(n).astype(str)),
                   "run_id": np.full(n, run), "customer_pid": np.char.mod("%032x", np.arange(n)),
                   "tier": np.array(["gold", "silver", "bronze"])[rng.integers(0, 3, n)],
                   "churn_warning": rng.random(n) < 0.1}  # fmt: skip
        _write(root, "segment_scores", "scores", run_day.isoformat(), scores)


def _campaign_day(root: Path, rng: np.random.Generator, day: date, customers: int, n: int
                  ) -> None:  # fmt: skip
    base = np.datetime64(day.isoformat(), "ms")
    for kind, share in (("sent", 0.85), ("exposure", 0.1), ("conversion", 0.05)):
        m = max(int(n * share), 1)
        facts = {c: pa.nulls(m) for c, _ in CAMPAIGN_FACTS.columns}
        facts |= {"fact_id": np.char.add(f"{day}-{kind}-", np.arange(m).astype(str)),
                  "customer_pid": _pids(rng, customers, m),
                  "occurred_at": base + rng.integers(0, 86_400_000, m).astype("timedelta64[ms]"),
                  "campaign_id": np.char.add("c-", rng.integers(0, 20, m).astype(str)),
                  "variant": np.array(["A", "B"])[rng.integers(0, 2, m)],
                  "arm": np.full(m, "holdout" if kind == "exposure" else "treatment"),
                  "channel": np.full(m, "sms")}  # fmt: skip
        if kind == "sent":
            facts["cost"] = np.full(m, 0.05)
        if kind == "conversion":
            facts["revenue"] = np.round(rng.gamma(2.0, 80.0, m), 2)
        _write(root, "campaign_facts", kind, day.isoformat(), facts)


def _ticket_day(root: Path, rng: np.random.Generator, day: date, customers: int, n: int) -> None:
    base = np.datetime64(day.isoformat(), "ms")
    for kind in ("opened", "first_response", "resolved", "breached", "escalated"):
        m = n if kind in ("opened", "first_response", "resolved") else max(n // 10, 1)
        facts = {c: pa.nulls(m) for c, _ in TICKETS.columns}
        facts |= {"fact_id": np.char.add(f"{day}-{kind}-", np.arange(m).astype(str)),
                  "ticket_id": np.char.add(f"t-{day}-", np.arange(m).astype(str)),
                  "customer_pid": _pids(rng, customers, m),
                  "occurred_at": base + rng.integers(0, 86_400_000, m).astype("timedelta64[ms]"),
                  "category": np.array(["delivery", "refund", "product"])[rng.integers(0, 3, m)],
                  "priority": np.array(["high", "normal", "low"])[rng.integers(0, 3, m)],
                  "channel": np.full(m, "app"),
                  "metric": np.full(m, "first_response"),
                  "seconds": rng.gamma(2.0, 3600.0, m)}  # fmt: skip
        _write(root, "ticket_facts", kind, day.isoformat(), facts)


# ---------------------------------------------------------------- Athena's bytes scanned
def _conditions(where: exp.Expression | None) -> tuple[set[str] | None, str | None, str | None]:
    """The `type` values and `dt` bounds a WHERE clause (its AND-ed terms) allows."""
    types: set[str] | None = None
    low = high = None
    if where is None:
        return types, low, high
    for cond in where.find_all(exp.In, exp.EQ, exp.Between, exp.LTE, exp.GTE):
        column = cond.this
        if not isinstance(column, exp.Column):
            continue
        if column.name == "type" and isinstance(cond, exp.In):
            types = {e.this for e in cond.expressions if isinstance(e, exp.Literal)}
        elif column.name == "type" and isinstance(cond, exp.EQ):
            value = cond.expression
            types = {value.this} if isinstance(value, exp.Literal) else types
        elif column.name == "dt" and isinstance(cond, exp.Between):
            low, high = cond.args["low"].this, cond.args["high"].this
        elif column.name == "dt" and isinstance(cond, exp.LTE):
            high = cond.expression.this if isinstance(cond.expression, exp.Literal) else high
        elif column.name == "dt" and isinstance(cond, exp.GTE):
            low = cond.expression.this if isinstance(cond.expression, exp.Literal) else low
    return types, low, high


@dataclass(frozen=True)
class Scan:
    table: str
    columns: frozenset[str]
    types: frozenset[str] | None
    low: str | None
    high: str | None


def scans(sql: str) -> list[Scan]:
    """Each read of a lake table in the query: the columns the query names that the table has
    (a superset of what it reads), and the partitions its own SELECT's conditions allow."""
    tree = sqlglot.parse_one(sql, read="trino")
    named = {c.name for c in tree.find_all(exp.Column)}
    out = []
    for table in tree.find_all(exp.Table):
        if table.name not in BY_NAME:
            continue
        select = table.find_ancestor(exp.Select)
        where = select.args.get("where") if select is not None else None
        types, low, high = _conditions(where.this if where is not None else None)
        columns = frozenset(named & set(BY_NAME[table.name].column_names))
        out.append(Scan(table.name, columns, frozenset(types) if types else None, low, high))
    return out


def _footer_sizes(root: Path) -> dict[tuple[str, str, str], dict[str, int]]:
    """(table, type, day) -> column -> compressed bytes."""
    sizes: dict[tuple[str, str, str], dict[str, int]] = {}
    for path in root.glob("*/type=*/dt=*/*.parquet"):
        table, kind, day = path.parts[-4], path.parts[-3][5:], path.parts[-2][3:]
        meta = pq.ParquetFile(path).metadata
        by_column: dict[str, int] = {}
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            for c in range(group.num_columns):
                chunk = group.column(c)
                name = chunk.path_in_schema
                by_column[name] = by_column.get(name, 0) + chunk.total_compressed_size
        sizes[(table, kind, day)] = by_column
    return sizes


def scanned_bytes(sql: str, sizes: dict[tuple[str, str, str], dict[str, int]]) -> int:
    total = 0
    for scan in scans(sql):
        for (table, kind, day), columns in sizes.items():
            if table != scan.table or (scan.types is not None and kind not in scan.types):
                continue
            if (scan.low and day < scan.low) or (scan.high and day > scan.high):
                continue
            total += sum(columns.get(c, 0) for c in scan.columns)
    return total


# ---------------------------------------------------------------- measure
@dataclass
class Result:
    events: int
    files: int
    lake_mb: float
    seconds: dict[str, float]
    scanned: dict[str, int]

    @property
    def view_s(self) -> float:
        return sum(self.seconds.values())

    @property
    def view_bytes(self) -> int:
        return sum(self.scanned.values())

    @property
    def billed_bytes(self) -> int:
        return sum(max(b, BILLED_MIN) for b in self.scanned.values())


def measure(events: int, rounds: int = 2) -> Result:
    with tempfile.TemporaryDirectory(prefix="crm-bench-lake-") as tmp:
        root = Path(tmp)
        generate(root, events)
        files = list(root.glob("*/type=*/dt=*/*.parquet"))
        sizes = _footer_sizes(root)
        seconds: dict[str, float] = {}
        scanned: dict[str, int] = {}
        query = {"from": (END - timedelta(days=29)).isoformat(), "to": END.isoformat()}
        for name, metric in METRICS.items():
            sql = metric_sql(name, parse_query(metric, query, END))
            runs = []
            for _ in range(rounds):
                started = time.perf_counter()
                duckdb_parquet_rows(str(root), sql)
                runs.append(time.perf_counter() - started)
            seconds[name] = statistics.median(runs)
            scanned[name] = scanned_bytes(sql, sizes)
        lake = sum(f.stat().st_size for f in files) / 1e6
        return Result(events, len(files), lake, seconds, scanned)


def section(results: list[Result]) -> list[str]:
    mb = 1024 * 1024
    lines = [
        BEGIN,
        "## Analytics: the metrics on DuckDB, and Athena's bytes scanned",
        "",
        "Every dashboard metric (`crm/analytics/metrics.py`) for the last 30 days, grain day, "
        "run by DuckDB (embedded, one process, this machine) over a synthetic lake written as "
        "compaction writes it (`bench/analytics.py`: a year of events, 10 a customer, their "
        "order items, campaign and ticket facts, four weekly segment runs; one Parquet file a "
        "table, type and day). Median of 2 runs each; a dashboard view asks for all of them. "
        "Athena's bytes are counted from the Parquet footers: the compressed columns each "
        "metric names, in the partitions its `type` and `dt` conditions leave (partition "
        "projection prunes the rest; metrics that look back at customers' history read every "
        "day of `events`' order types). Athena bills at least 10 MB a query.",
        "",
        "| events | Parquet files | lake MB | a view on DuckDB (s) | slowest metric | "
        "Athena MB scanned a view | billed MB a view (~USD at $5/TB) |",
        "| ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for r in results:
        slow = max(r.seconds, key=lambda k: r.seconds[k])
        cost = r.billed_bytes / 1024**4 * 5
        lines.append(
            f"| {r.events:,} | {r.files:,} | {r.lake_mb:,.0f} | {r.view_s:.1f} | "
            f"{slow} {r.seconds[slow]:.2f} s | {r.view_bytes / mb:,.1f} | "
            f"{r.billed_bytes / mb:,.0f} (${cost:.4f}) |"
        )
    lines += ["", "| metric | " + " | ".join(f"{r.events:,}: s, MB scanned" for r in results)
              + " |", "| --- |" + " ---: |" * len(results)]  # fmt: skip
    for name in METRICS:
        cells = " | ".join(f"{r.seconds[name]:.2f}, {r.scanned[name] / mb:.1f}" for r in results)
        lines.append(f"| {name} | {cells} |")
    lines += [
        "",
        "The dashboard caches each answer (15 minutes for a period that includes today), so "
        "these are the cost of a first view or a refresh, not of every page load.",
        END_MARK,
    ]
    return lines


def write(lines: list[str]) -> None:
    """Put the section into docs/benchmarks.md in place of its previous version (or at the
    end), for a run of this benchmark alone."""
    text = OUT.read_text()
    block = "\n".join(lines)
    if BEGIN in text and END_MARK in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END_MARK, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    OUT.write_text(text)


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:] if a.isdigit()] or [1_000_000, 10_000_000]
    results = []
    for n in sizes:
        print(f"analytics: {n:,} events ...", flush=True)
        results.append(measure(n))
    lines = section(results)
    print("\n".join(lines))
    if "--write" in sys.argv:
        write(lines)


if __name__ == "__main__":
    main()
