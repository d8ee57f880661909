"""Several segment runs in a row on the emulator: every one completes, its progress is readable
while it runs, and GET /segments keeps answering 200 the whole time (a run's scans never hold
the API's reads up until they time out)."""

from __future__ import annotations

import subprocess
import threading
import time
from typing import Any

import pytest

from crm_local.template import ROOT
from tests.e2e.conftest import CLI, Running, wait_for

pytestmark = pytest.mark.e2e

RUNS = 3
CUSTOMERS = 60


def seed(emulator: Running, customers: int) -> None:
    done = subprocess.run(
        [*CLI, "--state-dir", str(emulator.state_dir), "--template", str(emulator.template),
         "seed", "--customers", str(customers)],
        capture_output=True, text=True, cwd=ROOT, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]


def test_segment_runs_in_a_row_all_complete_while_the_list_keeps_answering(
    emulator: Running,
) -> None:
    seed(emulator, CUSTOMERS)
    admin, analyst = emulator.token("admin"), emulator.token("analyst")
    answers: list[tuple[int, float]] = []
    stop = threading.Event()

    def keep_reading() -> None:
        while not stop.is_set():
            started = time.monotonic()
            status, _ = emulator.http("GET", "/segments", token=analyst)
            answers.append((status, time.monotonic() - started))
            stop.wait(0.2)

    def runs_seen() -> set[str]:
        status, listing = emulator.http("GET", "/segments", token=analyst)
        assert status == 200, listing
        current = listing["current_run"]
        return {r for r in (listing["latest_run"], current and current["run_id"]) if r}

    reader = threading.Thread(target=keep_reading, daemon=True)
    reader.start()
    finished: list[dict[str, Any]] = []
    try:
        seen = runs_seen()
        for n in range(RUNS):
            started = time.monotonic()
            if n % 2 == 0:  # the nightly schedule, fired now
                assert "crm-segments-nightly-dev" in emulator.cli(
                    "fire", "crm-segments-nightly-dev"
                )
            else:  # a run on request
                assert emulator.http("POST", "/segments/runs", token=admin)[0] == 202
            run_id = wait_for(lambda: next(iter(runs_seen() - seen), None), timeout=120)
            seen.add(run_id)

            def ended(run_id: str = run_id) -> dict[str, Any] | None:
                status, run = emulator.http("GET", f"/segments/runs/{run_id}", token=analyst)
                assert status == 200, run
                return run if run["status"] in ("complete", "failed") else None

            run = wait_for(ended, timeout=600, every=1)
            assert run["status"] == "complete", run
            progress = run["progress"]
            assert progress["shards_done"] == progress["shards_total"] >= 8
            assert progress["profiles_scored"] >= CUSTOMERS
            finished.append({**run, "took_s": round(time.monotonic() - started, 1)})
    finally:
        stop.set()
        reader.join(timeout=60)

    statuses = [status for status, _ in answers]
    assert statuses, "the list was never read during the runs"
    assert set(statuses) == {200}, statuses
    _, listing = emulator.http("GET", "/segments", token=analyst)
    assert listing["latest_run"] == finished[-1]["run_id"]
    trend = next(s for s in listing["segments"] if s["name"] == "tier:regular")["trend"]
    assert [t["run_id"] for t in trend][-RUNS:] == [r["run_id"] for r in finished]
    slowest = max(seconds for _, seconds in answers)
    print(f"\nruns took {[r['took_s'] for r in finished]} s; GET /segments answered "
          f"{len(answers)} times, slowest {slowest:.2f} s")  # fmt: skip
