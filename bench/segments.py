"""Segment benchmarks: BG/NBD and Gamma-Gamma fits at 10k, 100k and 1M customers against
`lifetimes` (interleaved in one process, ratios with their spread), what the planner's exact
fit costs at 1M customers and on 10M customers' statistics, scoring throughput per worker,
and the fan-out plan for 10M customers derived from it.

Fits run with one BLAS thread (`OPENBLAS_NUM_THREADS=1`, as the planner runs in
template.yaml), set by `bench.run` before numpy loads: both sides' optimizers call BLAS on
tiny matrices, where threads cost far more than the work on a shared machine.
"""

from __future__ import annotations

import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import botocore.parsers
import numpy as np

from crm.profiles.models import Aggregates, OrderAggregates
from crm.profiles.records import ProfileRecord
from crm.segments.fitted import BgNbdParams, GammaGammaParams, SegmentModel
from crm.segments.fitting import (
    bgnbd_log_likelihood,
    fit_bgnbd,
    fit_gamma_gamma,
    gamma_gamma_log_likelihood,
)
from crm.segments.recompute import PROFILES_PER_SHARD
from crm.segments.scoring import Features, features_of, rfm_thresholds, score_page
from crm_local.template import ROOT

T_ = TypeVar("T_")

TRUE = {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.43}  # CDNOW-like, in weeks
WEEKS = 39.0


def simulate(n: int, seed: int = 1, weeks: float = WEEKS) -> tuple[np.ndarray, ...]:
    """BG/NBD's own story: gamma purchase rates, beta dropout, a first purchase at week 0,
    customers acquired over the second half of `weeks`."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(TRUE["r"], 1 / TRUE["alpha"], n)
    p = rng.beta(TRUE["a"], TRUE["b"], n)
    T = rng.uniform(weeks / 2, weeks, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    t = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    for _ in range(200):
        t = t + rng.exponential(1 / np.maximum(lam, 1e-9))
        buying = alive & (t < T)
        if not buying.any():
            break
        x[buying] += 1
        t_x[buying] = t[buying]
        alive &= ~(buying & (rng.random(n) < p))
    # Gamma-Gamma's story: nu ~ Gamma(q, rate v), each purchase ~ Gamma(p, rate nu), so the mean
    # of x purchases ~ Gamma(p x, rate nu x).
    nu = rng.gamma(3.74, 1 / 15.44, n)
    spend = rng.gamma(6.25 * np.maximum(x, 1), 1 / (nu * np.maximum(x, 1)))
    return x, t_x, T, spend


@dataclass(frozen=True)
class FitComparison:
    """One model fitted by us and by `lifetimes` on the same customers, `rounds` times, the
    two interleaved (A B, B A, ...) in one process; ratios are lifetimes' time over ours."""

    model: str
    customers: int
    ours_s: list[float]
    theirs_s: list[float]
    ours: dict[str, float]
    theirs: dict[str, float]
    ours_ll: float  # both parameter sets' log-likelihood, by our objective
    theirs_ll: float

    @property
    def ratios(self) -> list[float]:
        return [t / o for o, t in zip(self.ours_s, self.theirs_s, strict=True)]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def worst_relative_gap(self) -> float:
        return max(abs(self.ours[k] - self.theirs[k]) / abs(self.theirs[k]) for k in self.ours)


def _timed(run: Callable[[], T_]) -> tuple[float, T_]:
    started = time.perf_counter()
    value = run()
    return time.perf_counter() - started, value


def compare_fits(n: int, rounds: int = 3) -> list[FitComparison]:
    """BG/NBD and Gamma-Gamma, ours against lifetimes, every customer (no sample)."""
    warnings.simplefilter("ignore")
    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    x, t_x, T, spend = simulate(n)
    repeat = x > 0
    frequency, recency, age = pd.Series(x), pd.Series(t_x), pd.Series(T)
    buyers, values = pd.Series(x[repeat]), pd.Series(spend[repeat])
    runs: dict[str, list[Callable[[], Any]]] = {
        "BG/NBD": [lambda: fit_bgnbd(x, t_x, T),
                   lambda: BetaGeoFitter().fit(frequency, recency, age)],
        "Gamma-Gamma": [lambda: fit_gamma_gamma(x, spend),
                        lambda: GammaGammaFitter().fit(buyers, values)],
    }  # fmt: skip
    results = []
    for model, (ours_fit, theirs_fit) in runs.items():
        times: list[list[float]] = [[], []]
        fitted: list[Any] = [None, None]
        for r in range(rounds):
            for i in (0, 1) if r % 2 == 0 else (1, 0):
                seconds, fitted[i] = _timed((ours_fit, theirs_fit)[i])
                times[i].append(seconds)
        ours, theirs = fitted
        names = ("r", "alpha", "a", "b") if model == "BG/NBD" else ("p", "q", "v")
        mine = {k: float(getattr(ours, k)) for k in names}
        other = {k: float(theirs.params_[k]) for k in names}
        if model == "BG/NBD":
            lls = [float(np.sum(bgnbd_log_likelihood(list(p.values()), x, t_x, T)))
                   for p in (mine, other)]  # fmt: skip
        else:
            lls = [float(np.sum(gamma_gamma_log_likelihood(list(p.values()), x[repeat],
                                                           spend[repeat])))
                   for p in (mine, other)]  # fmt: skip
        results.append(FitComparison(model, n, times[0], times[1], mine, other, *lls))
    return results


@dataclass(frozen=True)
class PlannerFit:
    """What the planner's fit costs on `customers`: as it holds them (a list of Features,
    `features=True`) or as 10M-scale sufficient statistics alone (arrays on a day grid)."""

    customers: int
    rows: int  # distinct (x, t_x, T) rows of the statistics
    build_s: float  # features or simulated arrays, for information
    fit_s: float  # statistics + BG/NBD + Gamma-Gamma (+ RFM cut points with features)
    peak_mb: float  # the process's peak resident memory
    base_mb: float  # ... before the customers were made


def planner_fit(customers: int, features: bool = True) -> PlannerFit:
    """Measured in a fresh interpreter (peak memory is per process), with one BLAS thread
    as the planner runs (template.yaml)."""
    code = f"import json; from bench.segments import _planner_fit_here as f; " \
           f"print('FIT ' + json.dumps(f({customers}, {features})))"  # fmt: skip
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True, cwd=ROOT)  # fmt: skip
    line = next(x for x in out.stdout.splitlines() if x.startswith("FIT "))
    return PlannerFit(**json.loads(line[4:]))


def _peak_mb() -> float:
    """The process's peak resident memory since exec. Linux's ru_maxrss keeps the peak of the
    process that forked it, VmHWM is this address space's own."""
    try:
        status = Path("/proc/self/status").read_text()
        return next(int(line.split()[1]) for line in status.splitlines()
                    if line.startswith("VmHWM:")) / 1024  # fmt: skip
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _planner_fit_here(customers: int, features: bool) -> dict[str, float]:
    from crm.segments.fitting import (
        DAY_GRID,
        RepeatData,
        fit_bgnbd_statistics,
        fit_gamma_gamma,
        fit_segment_model,
    )

    base = _peak_mb()
    started = time.perf_counter()
    # First orders over 18 months, the oldest 3 years ago, in days: a shop's spread of ages.
    x, t_x, T, spend = simulate(customers, weeks=156)
    t_x, T = t_x * 7, T * 7
    if features:
        now = datetime(2026, 11, 23, tzinfo=UTC)
        base_features = [
            Features(customer_id=f"c{i:08d}", order_count=int(x[i]) + 1, frequency=float(x[i]),
                     recency=float(t_x[i]), age=float(T[i]), days_since_last=float(T[i] - t_x[i]),
                     monetary=float(spend[i]), total_spend=float(spend[i] * (x[i] + 1)),
                     recent_orders=0, baseline_rate=0.0)
            for i in range(customers)
        ]  # fmt: skip
        build = time.perf_counter() - started
        started = time.perf_counter()
        model = fit_segment_model("bench", now, base_features)
        fit = time.perf_counter() - started
        rows = RepeatData.of(x, t_x, T, grid=DAY_GRID)
        if model.bgnbd is None or model.bgnbd.sample_size != customers:
            raise RuntimeError("the planner did not fit BG/NBD on every customer")
    else:
        build = time.perf_counter() - started
        started = time.perf_counter()
        rows = RepeatData.of(x, t_x, T, grid=DAY_GRID)
        fit_bgnbd_statistics(rows)
        fit_gamma_gamma(x, spend)
        fit = time.perf_counter() - started
    return {"customers": customers, "rows": int(rows.x.size + rows.t_none.size),
            "build_s": build, "fit_s": fit, "peak_mb": _peak_mb(), "base_mb": base}  # fmt: skip


def _record(i: int, rng: np.random.Generator, now: datetime) -> ProfileRecord:
    first = now - timedelta(days=float(rng.uniform(30, 700)))
    count = int(rng.integers(1, 12))
    last = first + (now - first) * float(rng.uniform(0, 1))
    months = {last.strftime("%Y-%m"): 1, first.strftime("%Y-%m"): count - 1 or 1}
    spend = Decimal(int(rng.integers(50, 5000)))
    orders = OrderAggregates(order_count=count, total_spend=spend, first_order_at=first,
                             last_order_at=last, orders_by_month=months)  # fmt: skip
    return ProfileRecord(customer_id=f"c{i}", created_at=first, updated_at=now,
                         aggregates=Aggregates(orders=orders))  # fmt: skip


def scoring_throughput(n: int = 20_000) -> float:
    """Profiles scored per second by one worker's CPU (features, RFM, P(alive), CLV)."""
    now = datetime(2026, 11, 23, tzinfo=UTC)
    rng = np.random.default_rng(3)
    records = [_record(i, rng, now) for i in range(n)]
    features = [f for r in records if (f := features_of(r, now)) is not None]
    x, t_x, T, spend = simulate(5000)
    fitted = fit_bgnbd(x, t_x * 7, T * 7)
    gg = fit_gamma_gamma(x, spend)
    model = SegmentModel(
        run_id="bench", fitted_at=now, sample_size=n, rfm=rfm_thresholds(features),
        bgnbd=BgNbdParams(r=fitted.r, alpha=fitted.alpha, a=fitted.a, b=fitted.b,
                          log_likelihood=fitted.log_likelihood, sample_size=fitted.sample_size),
        gamma_gamma=GammaGammaParams(p=gg.p, q=gg.q, v=gg.v, sample_size=gg.sample_size),
    )  # fmt: skip
    started = time.perf_counter()
    page = 300  # about one 1 MB DynamoDB scan page of profiles
    for start in range(0, len(records), page):
        chunk = records[start : start + page]
        score_page([f for r in chunk if (f := features_of(r, now)) is not None], model, now)
    return n / (time.perf_counter() - started)


def fan_out_plan(customers: int, cpu_per_s: float) -> dict[str, float]:
    # A worker also reads its shard: a parallel scan reads ~1 MB (~300 profiles) per request
    # at ~25 ms; scoring and reading overlap poorly in one thread, so they add up.
    read_per_s = 300 / 0.025
    per_worker = 1 / (1 / cpu_per_s + 1 / read_per_s)
    shards = math.ceil(customers / PROFILES_PER_SHARD)
    minutes_per_shard = PROFILES_PER_SHARD / per_worker / 60
    concurrency = 100  # the worker's MaximumConcurrency in template.yaml
    waves = math.ceil(shards / concurrency)
    return {
        "shards": shards,
        "per_worker_per_s": per_worker,
        "minutes_per_shard": minutes_per_shard,
        "concurrency": concurrency,
        "minutes": waves * minutes_per_shard,
    }


# ------------------------------------------------------------------ the worker's paths
# On-demand prices, us-east-1, since the November 2024 reduction: $0.625 per million write
# request units, $0.125 per million read request units (aws.amazon.com/blogs/aws/amazon-
# dynamodb-on-demand-no-capacity-planning-and-pay-per-request-pricing, updated 2025-01-31;
# figures as quoted at airbyte.com/data-engineering-resources/dynamodb-pricing). Throughput:
# 40,000 WRU/s and 40,000 RRU/s per on-demand table by default (docs.aws.amazon.com/
# amazondynamodb/latest/developerguide/on-demand-capacity-mode-max-throughput.html); an
# on-demand GSI is taken to have the same bound of its own.
USD_PER_M_WRU = 0.625
USD_PER_M_RRU = 0.125
TABLE_WRU_PER_S = 40_000
TABLE_RRU_PER_S = 40_000
EVENTS_USD_PER_M = 1.0  # EventBridge custom events (not looked up in this change)


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's size of an item in bytes: names plus values (numbers ~1 byte per 2 digits)."""

    def value(v: dict[str, Any]) -> int:
        kind, inner = next(iter(v.items()))
        if kind == "S":
            return len(inner.encode())
        if kind == "N":
            return len(inner.lstrip("-").replace(".", "")) // 2 + 1
        if kind in ("BOOL", "NULL"):
            return 1
        if kind == "B":
            return len(inner)
        if kind == "M":
            return 3 + sum(len(k.encode()) + value(x) + 1 for k, x in inner.items())
        if kind == "L":
            return 3 + sum(value(x) + 1 for x in inner)
        return sum(len(str(x)) for x in inner)

    return sum(len(k.encode()) + value(v) for k, v in item.items())


@dataclass(frozen=True)
class WorkerCosts:
    customers: int
    events_per_customer: int
    base_bytes_per_profile: float  # what a scan of the table read per profile (every item)
    index_bytes_per_profile: float  # what a scan of the scoring index reads per profile
    read_us_before: float  # client CPU per profile: botocore parse + deserialize + validate
    read_us_after: float  # botocore parse + lean parse
    read_ratio: tuple[float, float, float]  # before/after: median, low, high of the rounds
    read_us_with_rules: float  # after, when active rule segments need whole records
    read_ratio_with_rules: tuple[float, float, float]
    write_us_before: float  # client CPU per changed profile: the full transactional put
    write_us_after: float  # a 25th of a BatchWriteItem of scores items
    write_ratio: tuple[float, float, float]
    scores_item_bytes: float
    score_us: float  # features + scores per profile


def _spread(before: list[float], after: list[float]) -> tuple[float, float, float]:
    ratios = sorted(b / a for b, a in zip(before, after, strict=True))
    return statistics.median(ratios), ratios[0], ratios[-1]


def worker_costs(customers: int = 120, events: int = 10, rounds: int = 15) -> WorkerCosts:
    """The worker's read and write paths, before and after, on the same shop folded through
    the real handlers on moto; client CPU measured with canned responses (botocore's whole
    client pipeline, no network, no moto), before and after interleaved round by round."""
    from moto import mock_aws

    from crm import aws
    from crm.composition import root
    from crm.profiles.store import _record, scoring_page
    from crm_local.harness import local_suite
    from crm_local.seed import Shop

    with mock_aws(), local_suite() as suite:
        shop = Shop(seed=5).customers(customers)
        ids = {}
        for c in shop:
            out = suite.call("POST", "/customers", {"identities": c.identities,
                                                    "attributes": c.attributes})  # fmt: skip
            ids[c.key] = out.body["customer_id"]
        queued = [{**e, "customer_id": ids[e["customer_id"]]} for c in shop for e in c.events]
        for start in range(0, len(queued), 100):
            suite.call("POST", "/events", {"events": queued[start : start + 100]})
        suite.drain(rounds=5000)
        plan = suite.invoke("SegmentPlannerFunction", _nightly())
        suite.drain("SegmentWorkerFunction", "SegmentShardsQueue", rounds=200)
        table = suite.stack.refs["CustomersTable"]
        client = aws.dynamodb()
        raw_base = _raw_scan(client, {"TableName": table})
        raw_index = _raw_scan(client, {"TableName": table, "IndexName": "scoring"})
        raw_old = _raw_scan(client, {
            "TableName": table,
            "FilterExpression": "SK = :p AND attribute_not_exists(merged_into)",
            "ExpressionAttributeValues": {":p": {"S": "PROFILE"}},
        })  # fmt: skip
        every = [i for body in raw_base for i in json.loads(body)["Items"]]
        indexed = [i for body in raw_index for i in json.loads(body)["Items"]]
        profiles = sum(1 for i in every if i["SK"]["S"] == "PROFILE")
        scores_items = [i for i in indexed if i["SK"]["S"] == "SCORES"]
        parser = botocore.parsers.create_parser("json")
        shape = client.meta.service_model.operation_model("Scan").output_shape
        assert shape is not None

        def parse(body: bytes) -> dict[str, Any]:
            out: dict[str, Any] = parser.parse(
                {"body": body, "headers": {}, "status_code": 200}, shape
            )
            return out

        def before() -> float:
            started = time.thread_time()
            for body in raw_old:
                [_record(i) for i in parse(body)["Items"]]
            return time.thread_time() - started

        def after() -> float:
            started = time.thread_time()
            for body in raw_index:
                page = aws.scan_page(body)  # what the bulk client's Scan does now
                scoring_page(page["Items"], None)
            return time.thread_time() - started

        def with_rules() -> float:
            started = time.thread_time()
            for body in raw_index:
                found, _ = scoring_page(aws.scan_page(body)["Items"], None)
                [p.full_record() for p in found]
            return time.thread_time() - started

        read_b, read_a = _interleave(before, after, rounds)
        read_b2, read_r = _interleave(before, with_rules, rounds)
        records = [root().profile_service.load(cid) for cid in list(ids.values())[:25]]
        writes = _scores_writes(records, plan["run_id"])
        save_b, save_a = _client_writes(suite, records, writes, rounds)
        scored = _score_cost(records)
    per = 1e6 / profiles
    per_write = 1e6 / len(records)
    return WorkerCosts(
        customers=profiles,
        events_per_customer=events,
        base_bytes_per_profile=sum(item_size(i) for i in every) / profiles,
        index_bytes_per_profile=sum(item_size(i) for i in indexed) / profiles,
        read_us_before=statistics.median(read_b) * per,
        read_us_after=statistics.median(read_a) * per,
        read_ratio=_spread(read_b, read_a),
        read_us_with_rules=statistics.median(read_r) * per,
        read_ratio_with_rules=_spread(read_b2, read_r),
        write_us_before=statistics.median(save_b) * per_write,
        write_us_after=statistics.median(save_a) * per_write,
        write_ratio=_spread(save_b, save_a),
        scores_item_bytes=sum(item_size(i) for i in scores_items) / max(len(scores_items), 1),
        score_us=scored,
    )


def _nightly() -> dict[str, Any]:
    from crm_local.template import ROOT

    loaded: dict[str, Any] = json.loads(
        (ROOT / "events" / "schedule_segments_nightly.json").read_text()
    )
    return loaded


def _raw_scan(client: Any, params: dict[str, Any]) -> list[bytes]:
    """The response bodies of a whole scan, as DynamoDB sent them."""
    bodies: list[bytes] = []

    def keep(http_response: Any, **_: Any) -> None:
        bodies.append(http_response.content)

    client.meta.events.register("after-call.dynamodb.Scan", keep, unique_id="bench-raw")
    try:
        start = None
        while True:
            out = client.scan(**params, **({"ExclusiveStartKey": start} if start else {}))
            start = out.get("LastEvaluatedKey")
            if not start:
                break
    finally:
        client.meta.events.unregister("after-call.dynamodb.Scan", unique_id="bench-raw")
    return bodies


def _interleave(
    before: Callable[[], float], after: Callable[[], float], rounds: int
) -> tuple[list[float], list[float]]:
    b, a = [], []
    for n in range(rounds):
        if n % 2:
            a.append(after())
            b.append(before())
        else:
            b.append(before())
            a.append(after())
    return b, a


def _scores_writes(records: list[ProfileRecord], run_id: str) -> list[Any]:
    from crm.profiles import ScoresWrite
    from crm.profiles.models import CustomerScores

    default = CustomerScores(recency_score=3, frequency_score=3, monetary_score=3,
                             rfm_segment="need_attention", tier="potential",
                             p_alive=0.512, expected_orders_90d=0.42, clv_12m=Decimal("812.50"),
                             scored_at=datetime.now(UTC))  # fmt: skip
    return [
        ScoresWrite(r.customer_id, run_id, r.scores or default,
                    ("rfm:need_attention", "tier:potential"))
        for r in records
    ]  # fmt: skip


@contextmanager
def _canned(client: Any, body: bytes) -> Iterator[None]:
    """Every call of `client` answered at once with `body`: the client's own work only."""
    from botocore.awsrequest import AWSResponse, HTTPHeaders

    class Raw:
        def stream(self, **_: Any) -> Iterator[bytes]:
            yield body

    def answer(**_: Any) -> AWSResponse:
        return AWSResponse("https://dynamodb", 200, HTTPHeaders(), Raw())

    from moto.core.models import botocore_stubber

    # moto answers before-send too, and first: set it aside meanwhile.
    client.meta.events.unregister("before-send", botocore_stubber)
    client.meta.events.register("before-send.dynamodb", answer, unique_id="bench-canned")
    try:
        yield
    finally:
        client.meta.events.unregister("before-send.dynamodb", unique_id="bench-canned")
        client.meta.events.register("before-send", botocore_stubber)


def _client_writes(
    suite: Any, records: list[ProfileRecord], writes: list[Any], rounds: int
) -> tuple[list[float], list[float]]:
    """Before: a changed profile written as the worker did (ProfileService.save: the whole
    item in a TransactWriteItems). After: its scores item, a 25th of a BatchWriteItem."""
    from crm import aws
    from crm.composition import root
    from crm.profiles.store import SaveProfile

    store = root().profile_service.store
    client = aws.dynamodb()

    def before() -> float:
        started = time.thread_time()
        for r in records:
            r.updated_at = datetime.now(UTC)
            store.commit([SaveProfile(r, r.rev)])
        return time.thread_time() - started

    def after() -> float:
        started = time.thread_time()
        store.put_scores(writes)
        return time.thread_time() - started

    with _canned(client, b"{}"), _canned(aws.dynamodb_bulk(), b"{}"):
        return _interleave(before, after, rounds)


def _score_cost(records: list[ProfileRecord]) -> float:
    """Scoring CPU per profile (features, RFM, BG/NBD, CLV), from the throughput bench."""
    return 1e6 / scoring_throughput(5_000)


# The scores item's member index keys (TIER=tier:high_value#07, RFM=rfm:potential_loyalists#07
# at their longest), on top of the measured scores item.
MEMBER_KEYS_BYTES = (
    len("TIER") + len("tier:high_value#07") + len("RFM") + len("rfm:potential_loyalists#07")
)


def fan_out_plan_at(
    customers: int, costs: WorkerCosts, workers: int = 100, changed: float = 0.03,
    families: float = 0.25, rule_moves: float = 0.0, upgrade: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """One night at this size: reads, writes and write units per structure, dollars and wall
    time with `workers` workers at once. `changed` is the share of profiles whose scores or
    segments changed; `families` the computed families (tier, RFM) each changed profile moves
    in (0-2: the first is the tier); `rule_moves` the rule-segment transitions each has. An
    `upgrade` night is the one-off first run of this layout: every scored profile's scores item
    is rewritten with its index keys and its legacy SEG# items of a tier and an RFM cell go.

    Per profile: reading is an eventually consistent scan of the scoring index (0.5 RRU per
    4 KB read). A changed profile is one scores item in a 25th of a BatchWriteItem: 1 WRU in
    CustomersTable and 1 in the scoring index, which holds it. It is also the computed
    segments' membership: a move in a family costs that family's keys-only index 2 WRU (the old
    key's entry deleted, the new one put; 1 for a first entry or a last exit), and nothing in
    SegmentsTable, which takes rule-segment transitions only (1 WRU each, a 25th of a
    BatchWriteItem). Every transition is one bus event (a 10th of a PutEvents). A worker spends
    the measured client CPU on reading, parsing and scoring every profile and on writing the
    changed ones, plus ~10 ms per scan page of ~50 profiles, per BatchWriteItem and per
    PutEvents. DynamoDB bounds the rest: on-demand takes 40k WRU/s per table and per index,
    each apart, so the bound is the busiest structure's."""
    read_bytes = customers * costs.index_bytes_per_profile
    rru = read_bytes / 4096 * 0.5
    written = customers * (1.0 if upgrade else changed)
    item_wru = math.ceil((costs.scores_item_bytes + MEMBER_KEYS_BYTES) / 1024)
    tier_moves = written * min(families, 1.0)
    rfm_moves = written * max(families - 1.0, 0.0)
    wru = {
        "CustomersTable": written * item_wru,
        "scoring index": written * item_wru,
        # An upgrade night's keys are first entries (1 WRU), a move's a delete and a put.
        "tier_members": written if upgrade else 2 * tier_moves,
        "rfm_members": written if upgrade else 2 * rfm_moves,
        # Rule segments' items; an upgrade night also deletes two legacy items a customer.
        "SegmentsTable": written * rule_moves + (2 * written if upgrade else 0),
    }
    total_wru = sum(wru.values())
    events = (tier_moves + rfm_moves) * 2 + written * rule_moves
    batches = math.ceil(written / 25) + math.ceil(wru["SegmentsTable"] / 25)
    cpu_s = (
        customers * (costs.read_us_with_rules + costs.score_us) + written * costs.write_us_after
    ) / 1e6
    waits_s = (customers / 50 + batches + events / 10) * 0.010
    worker_s = (cpu_s + waits_s) / workers
    busiest = max(wru, key=lambda k: wru[k])
    bound_s = max(wru[busiest] / TABLE_WRU_PER_S, rru / TABLE_RRU_PER_S)
    return {
        "customers": customers,
        "workers": workers,
        "shards": math.ceil(customers / PROFILES_PER_SHARD),
        "reads_rru": rru,
        "read_requests": customers / 50,
        "writes": written + wru["SegmentsTable"],
        "write_requests": batches,
        "wru": total_wru,
        **{f"wru {k}": v for k, v in wru.items()},
        "bus_events": events,
        "usd": total_wru / 1e6 * USD_PER_M_WRU
        + rru / 1e6 * USD_PER_M_RRU
        + events / 1e6 * EVENTS_USD_PER_M,
        "worker_s": worker_s,
        "throughput_bound_s": bound_s,
        "bound_by": busiest if wru[busiest] / TABLE_WRU_PER_S >= rru / TABLE_RRU_PER_S else "reads",
        "minutes": max(worker_s, bound_s) / 60,
        "old_rru": customers * costs.base_bytes_per_profile / 4096 * 0.5,
    }
