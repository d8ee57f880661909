"""The collector's cold-start mode: raised thresholds while a Lambda init runs, the init's
objects frozen and the thresholds restored when the handler module is imported."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

from crm import coldstart
from crm_local.template import ROOT, load_template

_PROBE = """
import gc, json, sys
default = gc.get_threshold()
sys.path[:0] = {paths!r}
import importlib.util
import crm
during = gc.get_threshold()
spec = importlib.util.spec_from_file_location("app", {handler!r})
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)
print(json.dumps([default, during, gc.get_threshold(), gc.get_freeze_count()]))
"""


def _run(extra_env: dict[str, str]) -> list[object]:
    spec = next(s for s in load_template().functions() if s.logical_id == "TimerSweepFunction")
    code = _PROBE.format(
        paths=[str(spec.code_uri), str(ROOT / "layers" / "crm")],
        handler=str(spec.code_uri / "app.py"),
    )
    env = {k: v for k, v in os.environ.items() if k != "LAMBDA_TASK_ROOT"}
    env.update({"AWS_DEFAULT_REGION": "us-east-1", **extra_env})
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    result: list[object] = json.loads(out.stdout.splitlines()[-1])
    return result


def test_in_lambda_the_init_runs_with_raised_thresholds_and_ends_frozen() -> None:
    default, during, after, frozen = _run({"LAMBDA_TASK_ROOT": str(ROOT / "functions")})
    assert during == list(coldstart.INIT_THRESHOLD)
    assert after == default
    assert isinstance(frozen, int)
    assert frozen > 10_000  # the modules, models and clients' data


def test_outside_lambda_the_collector_is_left_alone() -> None:
    default, during, after, frozen = _run({})
    assert during == default
    assert after == default
    assert frozen == 0


def test_every_handler_module_ends_its_init_with_initialized() -> None:
    for spec in load_template().functions():
        module = spec.handler.rpartition(".")[0].replace(".", "/") + ".py"
        tree = ast.parse((spec.code_uri / module).read_text())
        last = tree.body[-1]
        assert isinstance(last, ast.Expr), spec.logical_id
        assert isinstance(last.value, ast.Call), spec.logical_id
        assert isinstance(last.value.func, ast.Name), spec.logical_id
        assert last.value.func.id == "initialized", spec.logical_id
