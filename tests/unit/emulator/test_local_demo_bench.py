"""`make bench` rewrites docs/benchmarks.md but keeps the "Local demo" section's dated
subsections (`python -m bench.local_demo`'s interleaved rounds, written by hand), and writes its
own latest run of the demo on top of them."""

from __future__ import annotations

from pathlib import Path

from bench.local_demo import LATEST, section
from bench.run import kept_local_demo, with_latest_demo


def test_the_local_demo_section_is_kept_wherever_it_is(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Cold start\nx\n\n## Local demo\n\n| a | b |\n\n## Next\ny\n")
    assert kept_local_demo(doc) == "\n## Local demo\n\n| a | b |\n"
    # Nor does it take the marker of another bench's section that follows it.
    doc.write_text("# B\n\n## Local demo\n\n| a |\n\n<!-- bench.x: begin -->\n## X\n")
    assert kept_local_demo(doc) == "\n## Local demo\n\n| a |\n"
    doc.write_text("# Benchmarks\n\n## Local demo\n\nlast\n")
    assert kept_local_demo(doc) == "\n## Local demo\n\nlast\n"


def test_nothing_is_kept_when_there_is_no_section(tmp_path: Path) -> None:
    assert kept_local_demo(tmp_path / "missing.md") == ""
    (tmp_path / "b.md").write_text("# Benchmarks\n\n## Cold start\n")
    assert kept_local_demo(tmp_path / "b.md") == ""


RUN = {"state": "ready", "since_start": 53.3, "cpu_s": {"emulator": 30.6, "emulator.1": 35.6},
       "steps": {"importing customers and their history": 5, "computing segments": 38},
       "lake_read_s": 62.1, "load_before": 0.9, "load_after": 1.9}  # fmt: skip


def test_the_latest_run_goes_on_top_and_replaces_the_one_before() -> None:
    latest = section([RUN], 2000)
    assert latest[0] == LATEST
    assert "| 1 | ready | **53.3** | 5 -> 38 | 62 | 66 | 0.9 -> 1.9 |" in latest
    kept = "\n## Local demo\n\n### 2026-12-07 night\n\nrounds\n"
    once = with_latest_demo(kept, latest)
    assert once.index(LATEST) < once.index("### 2026-12-07 night")
    again = with_latest_demo(once, section([{**RUN, "since_start": 60.0}], 2000))
    assert again.count(LATEST) == 1
    assert "**60.0**" in again
    assert "**53.3**" not in again
    assert again.endswith("### 2026-12-07 night\n\nrounds\n")
    assert with_latest_demo("", latest).startswith("\n## Local demo\n\n" + LATEST)
