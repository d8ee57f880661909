"""The template, the Chalice route table, the OpenAPI document and the sample events agree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from crm_local.apigw import api_routes
from crm_local.harness import Suite
from crm_local.openapi_doc import DOC_PATH, current_openapi, render
from crm_local.runtime import load_module
from crm_local.template import ROOT, load_template

EVENTS = ROOT / "events"


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return data


def test_every_chalice_route_is_an_api_event_of_the_template_and_back() -> None:
    template = load_template()
    module = load_module(template.function("ApiFunction"))
    module.families()  # each family's routes are registered when first needed
    app = module.app
    in_code = {(path, method) for path, methods in app.routes.items() for method in methods}
    in_template = {(r.path, r.method) for r in api_routes(template) if r.function == "ApiFunction"}
    assert in_code == in_template


def test_only_the_openapi_document_is_public() -> None:
    public = {r.path for r in api_routes(load_template()) if not r.authorized}
    assert public == {"/openapi.json"}


def test_committed_openapi_document_matches_the_code() -> None:
    assert DOC_PATH.read_text() == render(current_openapi()), "run `make openapi` and commit"


def test_openapi_is_served_without_a_token(suite: Suite) -> None:
    out = suite.call("GET", "/openapi.json", role=None)
    assert out.status == 200
    assert out.body["openapi"].startswith("3.")
    ops = {(p, m) for p, item in out.body["paths"].items() for m in item}
    assert ("/customers/{customer_id}", "patch") in ops
    assert "Customer360" in out.body["components"]["schemas"]


def test_sample_events_run_through_both_functions(suite: Suite) -> None:
    created = suite.invoke("ApiFunction", sample("api_post_customers.json"))
    assert created["statusCode"] == 201
    accepted = suite.invoke("ApiFunction", sample("api_post_events.json"))
    assert accepted["statusCode"] == 202
    folded = suite.invoke("ProfileEventsFunction", sample("sqs_profile_events.json"))
    assert folded == {"batchItemFailures": []}
    card = {"identities": [{"channel": "offline_store", "external_id": "card-880001"}]}
    profile = suite.call("POST", "/customers", card).body["profile"]
    assert profile["orders"]["total_spend"] == "268.00"
    assert profile["behaviour"]["view_count"] == 1
    missing = suite.invoke("ApiFunction", sample("api_get_customer.json"))
    assert missing["statusCode"] == 404
    assert suite.invoke("ApiFunction", sample("api_get_openapi.json"))["statusCode"] == 200


def test_sample_events_are_valid_json_files() -> None:
    names = sorted(p.name for p in Path(EVENTS).glob("*.json"))
    assert names
    for name in names:
        assert isinstance(sample(name), dict)


def test_segment_sample_events(suite: Suite) -> None:
    plan = suite.invoke("SegmentPlannerFunction", sample("schedule_segments_nightly.json"))
    assert plan["shards"] >= 1
    # The sample names a run that never happened: the shard fails (and SQS retries it).
    with pytest.raises(Exception, match="All records failed"):
        suite.invoke("SegmentWorkerFunction", sample("sqs_segment_shard.json"))
    assert suite.invoke("SegmentWatchdogFunction", sample("schedule_segments_watchdog.json")) == {
        "ended": []
    }


def test_the_api_the_event_folder_and_the_watchdog_do_not_load_the_analytics_layer() -> None:
    """numpy and scipy live in layers/analytics, which only the segment functions carry."""
    template = load_template()
    for function in ("ApiFunction", "ProfileEventsFunction", "SegmentWatchdogFunction"):
        spec = template.function(function)
        path = spec.code_uri / "app.py"
        code = (
            "import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('app', {str(path)!r})\n"
            "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
            "print(sorted(m for m in ('numpy', 'scipy') if m in sys.modules))"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, cwd=ROOT)  # fmt: skip
        assert out.stdout.strip() == "[]", function
