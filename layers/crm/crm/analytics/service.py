"""The analytics family's use cases: the metric catalogue and one metric for a period and
filters, computed by the engine or served from the cache."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from pydantic import ValidationError

from crm.analytics.metrics import CHANNELS, METRICS, Metric, render
from crm.analytics.models import (
    Grain,
    MetricInfo,
    MetricList,
    MetricResult,
    Period,
    Point,
    Series,
    Text,
)
from crm.auth import Caller
from crm.auth import Permission as P
from crm.clock import Clock
from crm.errors import FieldProblem, InvalidInput, NotFound
from crm.lake import Lake
from crm.models import category_of

Row = tuple[Any, ...]


class Engine(Protocol):
    """Runs a metric's SQL: DuckDB embedded (crm.analytics.engine) or Athena
    (crm.analytics.store.AthenaQueries); the root builds one when a metric is first computed."""

    def rows(self, sql: str, since: str) -> list[Row]:
        """The query's (series, x, y) rows; `since` (a day) is the oldest partition it needs."""
        ...


MAX_DAYS = 731  # two years of days in one query
FUNNEL_WINDOW_S = 7 * 86400  # a funnel's next step counts within a week of the one before
# Metrics that look back before the period (a customer's first order, their last one) read this
# much history; the embedded engine loads partitions from then on.
HISTORY_DAYS = 730
GRAINS: tuple[Grain, ...] = ("day", "week", "month")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")
CACHE_PREFIX = "analytics/cache/"


@dataclass(frozen=True)
class Query:
    start: date
    end: date  # inclusive
    grain: Grain
    filters: dict[str, str]

    def key(self, metric: str) -> str:
        text = json.dumps([metric, str(self.start), str(self.end), self.grain, self.filters],
                          sort_keys=True)  # fmt: skip
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def _literal(value: str) -> str:
    """A SQL string literal (standard quoting, the same in DuckDB and Trino)."""
    return "'" + value.replace("'", "''") + "'"


def _day(name: str, raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(
            f"{name} must be a date (YYYY-MM-DD)", [FieldProblem(name, "not a date")]
        ) from None


def parse_query(metric: Metric, raw: Mapping[str, str], today: date) -> Query:
    """The period and filters of a request, or InvalidInput naming what is wrong."""
    end = _day("to", raw["to"]) if raw.get("to") else today
    days = metric.default_days
    start = _day("from", raw["from"]) if raw.get("from") else end - timedelta(days=days - 1)
    if start > end:
        raise InvalidInput("from must not be after to", [FieldProblem("from", "after to")])
    if (end - start).days >= MAX_DAYS:
        raise InvalidInput(
            f"a period spans at most {MAX_DAYS} days", [FieldProblem("from", "period too long")]
        )
    grain = raw.get("grain") or "day"
    if grain not in GRAINS:
        raise InvalidInput(
            "grain must be day, week or month", [FieldProblem("grain", "not a grain")]
        )
    filters: dict[str, str] = {}
    for name in ("channel", "category", "campaign"):
        value = raw.get(name)
        if value is None or value == "":
            continue
        if name not in metric.filters:
            raise InvalidInput(
                f"{metric.name} cannot be filtered by {name}",
                [FieldProblem(name, "not a filter of this metric")],
            )
        if name == "channel":
            if value not in CHANNELS:
                raise InvalidInput(
                    f"channel is one of {', '.join(CHANNELS)}",
                    [FieldProblem(name, "not a channel")],
                )
            filters[name] = metric.channel(value)
            continue
        # A category is read as the events' Category reads one (crm.models).
        checked = category_of(value) if name == "category" else value
        if checked is None or (name != "category" and not _ID.fullmatch(value)):
            raise InvalidInput(f"{name} is not a valid value", [FieldProblem(name, "invalid")])
        filters[name] = checked
    return Query(start, end, grain, filters)


def sql_values(query: Query) -> dict[str, str]:
    """The literals a metric's `$names` stand for (crm.analytics.metrics)."""
    after = query.end + timedelta(days=1)
    channel = query.filters.get("channel")
    category = query.filters.get("category")
    campaign = query.filters.get("campaign")
    return {
        "start_key": _literal(query.start.isoformat()),
        "end_key": _literal(query.end.isoformat()),
        "start": f"TIMESTAMP '{query.start.isoformat()} 00:00:00'",
        "end": f"TIMESTAMP '{after.isoformat()} 00:00:00'",
        "grain": _literal(query.grain),
        "window_s": str(FUNNEL_WINDOW_S),
        "channel_ok": f"channel = {_literal(channel)}" if channel else "TRUE",
        "category_ok": f"category = {_literal(category)}" if category else "TRUE",
        "category_ok_k": f"k.category = {_literal(category)}" if category else "TRUE",
        "category_chosen": "TRUE" if category else "FALSE",
        "campaign_ok": f"campaign_id = {_literal(campaign)}" if campaign else "TRUE",
    }


def metric_sql(name: str, query: Query) -> str:
    return render(METRICS[name], sql_values(query))


def _text(label: tuple[str, str]) -> Text:
    return Text(en=label[0], zh=label[1])


DIGITS = 6  # the API's figures are rounded to millionths


def _whole_shares(grouped: dict[str, list[Point]]) -> dict[str, list[Point]]:
    """Each x's shares rounded to millionths by largest remainder, so that they add up to
    exactly 1: rounded one by one, 2/3 + 1/6 + 1/6 came to 1.000001, and a chart stacking them
    scaled its axis to 120%."""
    unit = 10**DIGITS
    exact: dict[str, list[tuple[str, int, float]]] = {}
    for name, points in grouped.items():
        for i, point in enumerate(points):
            if point.y is not None:
                exact.setdefault(point.x, []).append((name, i, point.y * unit))
    out = {name: list(points) for name, points in grouped.items()}
    for x, parts in exact.items():
        floors = {(name, i): int(v) for name, i, v in parts}
        short = round(sum(v for _, _, v in parts)) - sum(floors.values())
        # The largest remainders take the millionths the floors left out (none if the shares
        # do not make a whole).
        by_remainder = sorted(parts, key=lambda part: part[2] - int(part[2]), reverse=True)
        for name, i, _ in by_remainder[: max(0, short)]:
            floors[name, i] += 1
        for (name, i), n in floors.items():
            out[name][i] = Point(x=x, y=n / unit)
    return out


def shape(metric: Metric, rows: list[Row]) -> list[Series]:
    """Rows of (series, x, y) as the API's series: in the order the metric names them (its
    labels; others by name), points in their bucket order."""
    grouped: dict[str, list[Point]] = {}
    for series, x, y in rows:
        value = None if y is None else float(y)
        if not metric.shares and value is not None:
            value = round(value, DIGITS)
        grouped.setdefault(str(series), []).append(Point(x=str(x), y=value))
    if metric.shares:
        grouped = _whole_shares(grouped)
    order = {x: i for i, x in enumerate(metric.x_order)}
    named = {name: i for i, name in enumerate(metric.labels)}

    def place(point: Point) -> tuple[int, str]:
        return order.get(point.x, len(order)), point.x

    return [
        Series(
            name=name,
            label=_text(metric.labels.get(name, (name, name))),
            points=sorted(points, key=place),
            unit=metric.units.get(name),
        )
        for name, points in sorted(
            grouped.items(), key=lambda item: (named.get(item[0], len(named)), item[0])
        )
    ]


class ResultCache:
    """Computed metrics as small JSON objects in the lake bucket (aggregates only: no customer
    ids), each with the time it stops being served."""

    def __init__(self, files: Lake) -> None:
        self._files = files

    def get(self, metric: str, key: str, now: datetime) -> MetricResult | None:
        body = self._files.read(f"{CACHE_PREFIX}{metric}/{key}.json")
        if body is None:
            return None
        try:
            stored = json.loads(body)
            if datetime.fromisoformat(stored["expires_at"]) <= now:
                return None
            return MetricResult.model_validate({**stored["result"], "cached": True})
        except (ValueError, KeyError, TypeError, ValidationError):
            return None  # an unreadable entry is recomputed and written anew

    def put(self, metric: str, key: str, result: MetricResult, expires_at: datetime) -> None:
        body: dict[str, Any] = {
            "expires_at": expires_at.isoformat(),
            "result": result.model_dump(mode="json", by_alias=True),
        }
        self._files.write(
            f"{CACHE_PREFIX}{metric}/{key}.json", json.dumps(body).encode(), "application/json"
        )


def campaign_labels(
    series: list[Series], names: Callable[[set[str]], Mapping[str, str]]
) -> dict[str, str]:
    """`campaign_id/variant` x values named `campaign name / variant` (campaigns that no longer
    exist keep their id alone)."""
    xs = {p.x for s in series for p in s.points}
    ids = {x.rsplit("/", 1)[0] for x in xs}
    found = names(ids) if ids else {}
    labels: dict[str, str] = {}
    for x in sorted(xs):
        campaign_id, _, variant = x.rpartition("/")
        name = found.get(campaign_id or x)
        if name is not None:
            labels[x] = f"{name} / {variant}" if campaign_id else name
    return labels


class Analytics:
    def __init__(
        self,
        engine: Callable[[], Engine],
        cache: ResultCache,
        clock: Clock,
        fresh_minutes: int = 15,
        settled_hours: int = 24,
        campaign_names: Callable[[set[str]], Mapping[str, str]] | None = None,
    ) -> None:
        self._campaign_names = campaign_names  # the campaigns family's, wired by the root
        self._engine = engine
        self._cache = cache
        self._clock = clock
        # A period that includes today changes as events arrive: recomputed at most this often.
        self._fresh = timedelta(minutes=fresh_minutes)
        # Past periods change only by late events and compaction: kept longer.
        self._settled = timedelta(hours=settled_hours)

    def list_metrics(self, caller: Caller) -> MetricList:
        caller.require(P.READ_ANALYTICS)
        return MetricList(
            metrics=[
                MetricInfo(
                    name=m.name,
                    title=_text(m.title),
                    filters=list(m.filters),
                    default_days=m.default_days,
                )
                for m in METRICS.values()
            ],
            today=self._clock().date(),
        )

    def metric(self, caller: Caller, name: str, raw: Mapping[str, str]) -> MetricResult:
        caller.require(P.READ_ANALYTICS)
        metric = METRICS.get(name)
        if metric is None:
            raise NotFound(f"no metric named {name}")
        now = self._clock()
        query = parse_query(metric, raw, now.date())
        key = query.key(name)
        cached = self._cache.get(name, key, now)
        if cached is not None:
            return cached
        since = (query.start - timedelta(days=HISTORY_DAYS)).isoformat()
        rows = self._engine().rows(metric_sql(name, query), since)
        series = shape(metric, rows)
        labels: dict[str, str] = {}
        if metric.x_campaigns and self._campaign_names is not None:
            labels = campaign_labels(series, self._campaign_names)
        result = MetricResult(
            name=name,
            title=_text(metric.title),
            unit=metric.unit,
            chart=metric.chart,
            period=Period.model_validate(
                {"from": query.start, "to": query.end, "grain": query.grain}
            ),
            filters=query.filters,
            series=series,
            x_labels=labels,
            computed_at=now,
            cached=False,
        )
        ttl = self._fresh if query.end >= now.date() else self._settled
        self._cache.put(name, key, result, now + ttl)
        return result
