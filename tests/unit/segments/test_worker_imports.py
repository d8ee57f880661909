"""The segment worker scores with numpy alone: neither it nor anything it imports to score a
shard loads scipy (whose import cost more than the rest of its cold start). Only the planner
fits, and loads scipy.optimize to do it. lint-imports checks the same statically; this checks
what a running process really loads, lazy imports included."""

from __future__ import annotations

import json
import subprocess
import sys

from crm_local.template import ROOT, load_template

SCORE_A_PAGE = """
from datetime import UTC, datetime
from crm.segments.recompute import SegmentRecompute  # what root().segment_recompute builds
from crm.segments.fitted import BgNbdParams, GammaGammaParams, RfmThresholds, SegmentModel
from crm.segments.scoring import Features, score_page
now = datetime(2026, 11, 23, tzinfo=UTC)
cuts = [1.0, 2.0, 3.0, 4.0]
model = SegmentModel(
    run_id="r", fitted_at=now, sample_size=2,
    rfm=RfmThresholds(recency_days=cuts, frequency=cuts, monetary=cuts),
    bgnbd=BgNbdParams(r=0.24, alpha=30.0, a=0.8, b=2.4, log_likelihood=-1.0, sample_size=2),
    gamma_gamma=GammaGammaParams(p=6.2, q=3.7, v=15.4, sample_size=2),
)
page = [Features(customer_id="c", order_count=4, frequency=3.0, recency=200.0, age=400.0,
                 days_since_last=200.0, monetary=50.0, total_spend=200.0, recent_orders=0,
                 baseline_rate=0.0)]
scores = score_page(page, model, now)
assert scores["c"].clv_12m is not None and scores["c"].p_alive is not None
"""

FIT = """
from crm.segments.recompute import SegmentRecompute
SegmentRecompute._fit("r", now, page * 20)
"""


def loaded_scipy(code: str) -> list[str]:
    handler = load_template().function("SegmentWorkerFunction").code_uri / "app.py"
    probe = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('app', {str(handler)!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        + code
        + "\nprint('SCIPY ' + json.dumps(sorted(m for m in sys.modules"
        " if m == 'scipy' or m.startswith('scipy.'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=ROOT)  # fmt: skip
    line = next(x for x in out.stdout.splitlines() if x.startswith("SCIPY "))
    found: list[str] = json.loads(line[len("SCIPY ") :])
    return found


def test_the_worker_scores_a_shard_without_loading_scipy() -> None:
    assert loaded_scipy(SCORE_A_PAGE) == []


def test_only_fitting_loads_scipy_optimize() -> None:
    # The probe above would see it: the planner's fit, in the same class, does load it.
    assert "scipy.optimize" in loaded_scipy(SCORE_A_PAGE + FIT)
