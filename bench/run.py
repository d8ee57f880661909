"""`make bench`: measure, then write docs/benchmarks.md."""

from __future__ import annotations

import platform
import sys
from datetime import UTC, datetime

from bench.coldstart import RUNS, measure_cold_starts
from bench.requests import count_requests_per_unit
from crm_local.template import ROOT

OUT = ROOT / "docs" / "benchmarks.md"


def main() -> None:
    print("measuring cold starts ...", flush=True)
    cold = measure_cold_starts()
    print("counting AWS requests ...", flush=True)
    counts = count_requests_per_unit()
    baseline = cold[0].total_ms
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
        "## Cold start",
        "",
        "A fresh interpreter imports the handler module (Lambda's init phase) and creates the AWS",
        f"clients the function uses on its first request; median of {RUNS} runs. The baseline",
        "imports boto3, Powertools' Logger and pydantic and creates one client.",
        "",
        "| function | import (ms) | client init (ms) | total (ms) | over baseline (ms) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for c in cold:
        over = "" if c is cold[0] else f"{c.total_ms - baseline:+.0f}"
        lines.append(
            f"| {c.name} | {c.import_ms:.0f} | {c.init_ms:.0f} | {c.total_ms:.0f} | {over} |"
        )
    lines += [
        "",
        "## AWS requests per unit of work",
        "",
        "Counted exactly (every API call through the shared clients) against moto, on a warm",
        "container. The integration tests assert the fold and read rows.",
        "",
        "| work | requests | by operation |",
        "| --- | ---: | --- |",
    ]
    for r in counts:
        detail = ", ".join(f"{op} {n}" for op, n in sorted(r.counts.items()))
        lines.append(f"| {r.work} | {r.total} | {detail} |")
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
