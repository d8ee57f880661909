"""Cold start of each function: a fresh interpreter importing the handler module (as Lambda's
init phase does) and creating the AWS clients it will use, beside a plain baseline."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass

from crm_local.template import ROOT, load_template

RUNS = 9

_PROBE = """
import importlib.util, json, sys, time
sys.path.insert(0, {layer!r})
t0 = time.perf_counter()
{imports}
t1 = time.perf_counter()
{init}
t2 = time.perf_counter()
print(json.dumps([t1 - t0, t2 - t1]))
"""

_LOAD = """
spec = importlib.util.spec_from_file_location("app", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
"""

BASELINE_IMPORTS = (
    "import boto3, pydantic\nfrom aws_lambda_powertools import Logger\nlogger = Logger()"
)
BASELINE_INIT = "boto3.session.Session().client('dynamodb')"

# The clients each function creates on its first request.
CLIENTS = {
    "ApiFunction": ("dynamodb", "kms", "sqs", "secretsmanager"),
    "ProfileEventsFunction": ("dynamodb", "s3", "events", "secretsmanager"),
    "SegmentPlannerFunction": ("dynamodb", "s3", "sqs"),
    "SegmentWorkerFunction": ("dynamodb", "s3", "events", "secretsmanager"),
}


@dataclass(frozen=True)
class ColdStart:
    name: str
    import_ms: float
    init_ms: float

    @property
    def total_ms(self) -> float:
        return self.import_ms + self.init_ms


def _measure(name: str, imports: str, init: str) -> ColdStart:
    code = _PROBE.format(layer=str(ROOT / "layers" / "crm"), imports=imports, init=init)
    env = {
        **os.environ,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "POWERTOOLS_SERVICE_NAME": "bench",
        "POWERTOOLS_METRICS_NAMESPACE": "Bench",
    }
    samples = []
    for _ in range(RUNS):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        )
        samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return ColdStart(
        name,
        import_ms=statistics.median(s[0] for s in samples) * 1000,
        init_ms=statistics.median(s[1] for s in samples) * 1000,
    )


def measure_cold_starts() -> list[ColdStart]:
    results = [_measure("baseline: boto3 + Powertools + pydantic", BASELINE_IMPORTS, BASELINE_INIT)]
    for spec in load_template().functions():
        path = spec.code_uri / (spec.handler.rpartition(".")[0] + ".py")
        clients = CLIENTS.get(spec.logical_id, ())
        init = "import crm.aws\n" + "\n".join(f"crm.aws.client_for({c!r})" for c in clients)
        results.append(_measure(spec.logical_id, _LOAD.format(path=str(path)), init))
    return results
