"""`make bench`: measure, then write docs/benchmarks.md."""

from __future__ import annotations

import os

# Before numpy loads: one BLAS thread, as the segment functions run (template.yaml). The
# model fits' optimizers (ours and lifetimes') call BLAS on 4x4 matrices, where OpenBLAS's
# threads cost up to ~100x the work on a shared machine.
os.environ["OPENBLAS_NUM_THREADS"] = "1"

import argparse
import platform
import statistics
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.analytics import measure as measure_analytics
from bench.analytics import section as analytics_section
from bench.classifier import benchmark_lines
from bench.coldstart import (
    ColdStarts,
    checkout_of,
    function_table,
    measure_cold_starts,
    tracer_table,
)
from bench.dispatch import measure as measure_dispatch
from bench.dispatch import section as dispatch_section
from bench.local_demo import LATEST
from bench.local_demo import measure as measure_local_demo
from bench.local_demo import section as demo_section
from bench.requests import RequestCount, count_requests_per_unit
from bench.segments import (
    WorkerCosts,
    compare_fits,
    fan_out_plan,
    fan_out_plan_at,
    planner_fit,
    scoring_throughput,
    worker_costs,
)
from bench.sends import measure as measure_sends
from bench.sends import section as sends_section
from crm.segments.recompute import PROFILES_PER_SHARD
from crm_local.template import ROOT

OUT = ROOT / "docs" / "benchmarks.md"
DEMO_CUSTOMERS = 2000  # make run's demo
FIT_ROUNDS = [(10_000, 7), (100_000, 5), (1_000_000, 3)]  # customers, interleaved pairs


def coldstart_section(cold: ColdStarts) -> list[str]:
    """The "Cold start" section: every function against the naive stack (and against the
    revision `make bench BEFORE=<ref>` names, in the same rounds), then Tracer's cost."""
    before = (
        [
            f"The before columns are revision `{cold.before_ref}` of the same functions, run in",
            "the same rounds (A B C, B C A, ...) with its own derived first requests.",
            "",
        ]
        if cold.before_ref
        else []
    )
    return [
        "## Cold start",
        "",
        f"Measured {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} on the machine above.",
        "",
        "Each function's init against a naive stack (`import boto3, pydantic; from",
        "aws_lambda_powertools import Logger, Metrics; Logger(); Metrics();",
        "boto3.client('dynamodb')`), run as interleaved pairs (A B, B A, ...),",
        f"{cold.pairs} pairs, a fresh interpreter each, so both see the same machine load. A probe",
        "imports the handler module (Lambda's init phase), then does what the first invocation",
        "creates before real work: its lazy imports, AWS clients, lazily built services and",
        "deferred pydantic schemas, derived by running first invocations against moto",
        "(`bench/first_request.py`; a schema counts as the request's when the request builds",
        "it, even if it also first defined its class). The API is measured once per first",
        "request (a new container serves one: a customer created, a support agent's read of",
        "one, an event batch). Compare the ratios (the one in CPU time moves less when the",
        "machine is shared); the ms are wall-clock medians for information.",
        "A queue function is first invoked with a message its producers left in the run, or,",
        "where the short run produced none (a timer not yet due, no campaign or privacy",
        "request), with its queue's sample of `events/` (ids of nothing stored: the message is",
        "parsed, looked up and settled), named in the last column.",
        "",
        *before,
        *function_table(cold.functions, cold.before_ref),
        "",
        "### Tracing",
        "",
        "Powertools `Tracer` (aws_xray_sdk, patching) on the naive stack against none,",
        "interleaved.",
        "X-Ray active tracing (`Tracing: Active`) alone adds nothing to the function's init.",
        "",
        *(tracer_table(cold.tracer) if cold.tracer else [cold.tracer_skipped]),
    ]


def requests_section(counts: Sequence[RequestCount]) -> list[str]:
    """The "AWS requests per unit of work" section."""
    lines = [
        "## AWS requests per unit of work",
        "",
        "Counted exactly (every API call through the shared clients) against moto, on a warm",
        "container. The integration tests assert the fold, read and audit rows.",
        "",
        "| work | requests | by operation |",
        "| --- | ---: | --- |",
    ]
    for r in counts:
        detail = ", ".join(f"{op} {n}" for op, n in sorted(r.counts.items()))
        lines.append(f"| {r.work} | {r.total} | {detail} |")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="measure, then write docs/benchmarks.md")
    parser.add_argument("--before", metavar="REF",
                        help="also this revision's cold starts, same rounds")  # fmt: skip
    parser.add_argument("--only", choices=("coldstart", "requests"),
                        help="measure this section alone and replace it in the file")  # fmt: skip
    args = parser.parse_args(argv)
    # The functions' CloudWatch metrics (EMF lines on stdout) are not the bench's output (set
    # here, not at import: tests import this module's helpers and count metrics).
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    if args.only == "requests":
        heading = "## AWS requests per unit of work"
        sections = requests_section(count_requests_per_unit())
        OUT.write_text(replace_section(OUT.read_text(), heading, sections))
        print(f"wrote the AWS requests section of {OUT.relative_to(ROOT)}")
        return
    print("measuring cold starts ...", flush=True)
    cold = _cold_starts(args.before)
    if args.only == "coldstart":
        OUT.write_text(replace_section(OUT.read_text(), "## Cold start", coldstart_section(cold)))
        print(f"wrote the cold start section of {OUT.relative_to(ROOT)}")
        return
    print("counting AWS requests ...", flush=True)
    counts = count_requests_per_unit()
    print("fitting segment models at 10k, 100k and 1M customers, ours and lifetimes ...",
          flush=True)  # fmt: skip
    fits = [f for n, rounds in FIT_ROUNDS for f in compare_fits(n, rounds)]
    print("the planner's exact fit at 1M customers and on 10M customers' statistics ...",
          flush=True)  # fmt: skip
    planner = [planner_fit(1_000_000), planner_fit(10_000_000, features=False)]
    print("scoring throughput ...", flush=True)
    throughput = scoring_throughput()
    plan = fan_out_plan(10_000_000, throughput)
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench`; do not edit by hand. Figures are from the machine below, so",
        "compare rows of one run, not runs of different machines.",
        "",
        f"- measured: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {platform.machine()}, {platform.system()} {platform.release()}, "
        f"Python {sys.version.split()[0]}",
        "",
        *coldstart_section(cold),
    ]
    lines += ["", *requests_section(counts)]
    lines += [
        "",
        "## Segment models",
        "",
        "Simulated customers drawn from the models themselves (BG/NBD r = 0.24, α = 4.4,",
        "a = 0.79, b = 2.43 over 39 weeks; Gamma-Gamma p = 6.25, q = 3.74, v = 15.44), fitted",
        "on every customer by ours (`crm.segments.fitting`: L-BFGS-B on log-parameters with",
        "analytic gradients on sufficient statistics) and by `lifetimes` 0.11 on the same data,",
        "the two interleaved in one process (A B, B A, ...), one BLAS thread as in the planner.",
        "Speed-up is lifetimes' time over ours per pair: the median, and the min–max. The gap is",
        "the largest relative difference of the parameters; Δ log-likelihood is ours minus",
        "lifetimes' (positive: ours is the higher maximum).",
        "",
        "| model | customers | pairs | ours (s) | lifetimes (s) | speed-up (median) "
        "| speed-up (min–max) | largest gap | Δ log-likelihood |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for f in fits:
        lines.append(
            f"| {f.model} | {f.customers:,} | {len(f.ratios)} "
            f"| {statistics.median(f.ours_s):.3f} | {statistics.median(f.theirs_s):.2f} "
            f"| **{f.ratio:.1f}x** | {min(f.ratios):.1f}–{max(f.ratios):.1f}x "
            f"| {f.worst_relative_gap:.1e} | {f.ours_ll - f.theirs_ll:+.3g} |"
        )
    whole, statistics_only = planner
    per_customer_mb = (whole.peak_mb - whole.base_mb) / whole.customers
    worker = next((c for c in cold.functions if c.name == "SegmentWorkerFunction"), None)
    lines += [
        "",
        "### The planner's fit: every customer, no sample",
        "",
        "The planner fits RFM cut points, BG/NBD and Gamma-Gamma on every customer it reads,",
        "times on a day grid (sufficient statistics: distinct (x, t_x, T) with their counts).",
        "Measured in a fresh process each; peak memory is the process's resident peak.",
        "",
        "| input | customers | distinct rows | fit (s) | peak memory (MB) |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| the planner's list of customers | {whole.customers:,} | {whole.rows:,} "
        f"| {whole.fit_s:.1f} | {whole.peak_mb:,.0f} |",
        f"| sufficient statistics alone | {statistics_only.customers:,} "
        f"| {statistics_only.rows:,} | {statistics_only.fit_s:.1f} "
        f"| {statistics_only.peak_mb:,.0f} |",
        "",
        f"Holding the customers costs ~{per_customer_mb * 1e6:,.0f} bytes each, so the",
        f"planner's 3,008 MB hold about {3008 / per_customer_mb / 1e6:.1f}M customers; the fit",
        "itself takes seconds even at 10M customers' statistics.",
    ]
    if worker is not None:
        lines += [
            "",
            f"The segment worker's cold start is **{worker.ratio:.2f}x** the naive stack "
            f"(pairs {min(worker.ratios):.2f}–{max(worker.ratios):.2f}; table above): it",
            "scores with numpy alone and loads no scipy.",
        ]
    lines += [
        "",
        "## Scoring and the fan-out plan",
        "",
        f"One worker scores **{throughput:,.0f} profiles/s** on its CPU (features, RFM quintiles,",
        "P(alive), expected orders, 12-month CLV, tier), in pages of 300 profiles (about one 1 MB",
        "scan page). Reading its shard is the other cost: taking a parallel-scan page of ~300",
        f"profiles at ~25 ms, a worker handles **{plan['per_worker_per_s']:,.0f} profiles/s**.",
        "",
        "The read side alone (reading and scoring every profile, no writes: a night when",
        "nothing changed); the nights that write are planned under the worker's costs below.",
        "",
        f"| customers | shards of {PROFILES_PER_SHARD:,} | per shard (read side) "
        "| worker concurrency | read-side run time |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| 10M | {plan['shards']:,.0f} | {plan['minutes_per_shard'] * 60:.1f} s "
        f"| {plan['concurrency']:.0f} | {plan['minutes']:.1f} min + planning |",
        "",
        "Planning reads whole scan segments until it holds the planner's read bound of customers",
        "(all of a smaller base) and fits on every one of them. Writes are only the",
        "customers whose scores or segments changed, so the nightly write cost follows the churn",
        "of the base, not its size: the plan below counts them per table and index.",
    ]
    print("the segment worker's read and write paths ...", flush=True)
    costs = worker_costs()
    rr, wr = costs.read_ratio, costs.write_ratio
    lines += [
        "",
        "## The segment worker, per profile",
        "",
        f"A shop of {costs.customers} customers, ~{costs.events_per_customer} events each,",
        "folded through the real handlers on moto. Client CPU with canned responses, before and",
        "after interleaved round by round (ratio: median, low-high).",
        "",
        "| | before | after | ratio |",
        "| --- | ---: | ---: | ---: |",
        f"| bytes a scan reads per profile (RRU basis) | {costs.base_bytes_per_profile:,.0f} "
        f"| {costs.index_bytes_per_profile:,.0f} "
        f"| {costs.base_bytes_per_profile / costs.index_bytes_per_profile:.1f}x |",
        f"| read: parse a page, per profile (µs) | {costs.read_us_before:,.0f} "
        f"| {costs.read_us_after:,.0f} | {rr[0]:.2f}x ({rr[1]:.2f}-{rr[2]:.2f}) |",
        f"| read, with active rule segments (whole records validated) "
        f"| {costs.read_us_before:,.0f} | {costs.read_us_with_rules:,.0f} "
        f"| {costs.read_ratio_with_rules[0]:.2f}x |",
        f"| write a changed profile (µs) | {costs.write_us_before:,.0f} "
        f"| {costs.write_us_after:,.0f} | {wr[0]:.1f}x ({wr[1]:.1f}-{wr[2]:.1f}) |",
        f"| scores item (bytes) | | {costs.scores_item_bytes:,.0f} | |",
        f"| score a profile (µs) | | {costs.score_us:,.0f} | |",
        "",
    ]
    lines += fan_out_section(costs)
    # campaigns: D
    print("dispatching campaign messages ...", flush=True)
    lines += ["", *dispatch_section(measure_dispatch())]
    # campaigns: S
    print("sending a segment send's pages ...", flush=True)
    lines += ["", *sends_section(measure_sends(500))]
    print("analytics metrics on DuckDB at 1M and 10M events ...", flush=True)
    analytics = [measure_analytics(n) for n in (1_000_000, 10_000_000)]
    lines += ["", *analytics_section(analytics)]
    print("ticket classification on the held-out split ...", flush=True)
    lines += ["", *benchmark_lines()]
    print("the local demo, twice ...", flush=True)
    demo = [measure_local_demo(ROOT, DEMO_CUSTOMERS, port=18800) for _ in range(2)]
    kept = with_latest_demo(kept_local_demo(OUT), demo_section(demo, DEMO_CUSTOMERS))
    OUT.write_text("\n".join(lines).rstrip("\n") + "\n" + kept)
    print(f"wrote {OUT.relative_to(ROOT)}")


NIGHTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("quiet (3% change)", {"changed": 0.03, "families": 0.25}),
    ("every profile changes (one family moves)", {"changed": 1.0, "families": 1.0}),
    ("every profile changes tier and RFM", {"changed": 1.0, "families": 2.0}),
    ("tier, RFM and a rule segment", {"changed": 1.0, "families": 2.0, "rule_moves": 1.0}),
    ("upgrade run (one-off)", {"upgrade": True, "families": 0.0}),
)
STRUCTURES = ("CustomersTable", "scoring index", "tier_members", "rfm_members", "SegmentsTable")


def fan_out_section(costs: WorkerCosts) -> list[str]:
    """The nightly plan at 1M and 10M: write units per table and index, the bound, dollars."""
    lines = [
        "A night's writes are one scores item per changed profile (CustomersTable, and the",
        "scoring index that holds it). That item is also the membership of the computed",
        "segments: a customer who moves tier or RFM cell costs that family's keys-only index",
        "(`tier_members`, `rfm_members`) 2 WRU (delete + put), nothing in SegmentsTable, which",
        "takes rule-segment transitions only. On-demand takes 40,000 WRU/s per table and per",
        "index, each apart, so the DynamoDB bound is the busiest structure's (named). Each",
        "transition is a bus event. The upgrade run is the first run of this layout on a",
        "deployment that holds legacy tier/RFM items: it rewrites every scores item (a first",
        "entry in each index) and deletes two legacy items per customer. Not bounded here:",
        "EventBridge's PutEvents requests per second, a regional quota (10 events a request:",
        "40M transitions are 4M requests, ~8,300/s over the 8 minutes); raise it or spread",
        "the run where the region's quota is lower. 40,000 WRU/s is on demand's default",
        "ceiling: a table or index that never saw such a peak (the member indexes, new) starts",
        "near 4,000 WRU/s and doubles its previous peak within 30 minutes, so the first such",
        "nights are slower unless the indexes' warm throughput is raised.",
        "",
        "| customers | night | RRU | "
        + " | ".join(f"WRU {k}" for k in STRUCTURES)
        + " | total WRU | bus events "
        "| $ | workers | worker-bound s | DynamoDB-bound s (busiest) | minutes |",
        "| ---: | --- | ---: | " + "---: | " * len(STRUCTURES) + "---: | ---: | ---: | ---: "
        "| ---: | --- | ---: |",
    ]
    for size in (1_000_000, 10_000_000):
        for label, night in NIGHTS:
            p = fan_out_plan_at(size, costs, **night)
            per = " | ".join(f"{p['wru ' + k]:,.0f}" for k in STRUCTURES)
            lines.append(
                f"| {size:,} | {label} | {p['reads_rru']:,.0f} | {per} | {p['wru']:,.0f} "
                f"| {p['bus_events']:,.0f} | {p['usd']:.2f} | {p['workers']:.0f} "
                f"| {p['worker_s']:.0f} | {p['throughput_bound_s']:.0f} ({p['bound_by']}) "
                f"| {p['minutes']:.1f} |"
            )
    return lines


def _cold_starts(before_ref: str | None) -> ColdStarts:
    if not before_ref:
        return measure_cold_starts()
    with checkout_of(before_ref) as tree:
        return measure_cold_starts(before=tree, before_ref=before_ref)


def replace_section(text: str, heading: str, lines: Sequence[str]) -> str:
    """`text` with the section under `heading` (to the next heading of its level) replaced."""
    start = text.find(f"\n{heading}\n")
    if start < 0:
        return text.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"
    end = text.find("\n## ", start + len(heading) + 2)
    rest = text[end:] if end >= 0 else "\n"
    return text[: start + 1] + "\n".join(lines) + "\n" + rest


LOCAL_DEMO = "## Local demo"


def kept_local_demo(path: Path) -> str:
    """The "Local demo" section as it was: its dated subsections are `python -m
    bench.local_demo`'s interleaved rounds of two trees, written by hand; `make bench` adds its
    own runs of this tree on top (`with_latest_demo`)."""
    try:
        text = path.read_text()
    except OSError:
        return ""
    start = text.find(f"\n{LOCAL_DEMO}\n")
    if start < 0:
        return ""
    # It ends where the next section or another bench's marked section begins.
    ends = [text.find(mark, start + len(LOCAL_DEMO) + 2) for mark in ("\n## ", "\n<!-- ")]
    end = min((e for e in ends if e >= 0), default=len(text))
    section = text[start:end].strip("\n")
    return f"\n{section}\n"


def with_latest_demo(kept: str, latest: Sequence[str]) -> str:
    """The kept "Local demo" section with `latest` as its first subsection (replacing the one
    an earlier run wrote); the dated subsections stay as written."""
    if not kept:
        return f"\n{LOCAL_DEMO}\n\n" + "\n".join(latest)
    body = kept.strip("\n").removeprefix(LOCAL_DEMO).lstrip("\n")
    if body.startswith(LATEST):
        following = body.find("\n### ")
        body = body[following + 1 :] if following >= 0 else ""
    return f"\n{LOCAL_DEMO}\n\n" + "\n".join(latest) + "\n" + body + "\n"


if __name__ == "__main__":
    main()
