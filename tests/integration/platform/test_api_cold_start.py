"""The API registers a family's routes when a request first needs one of them: a container's
cold start pays for the families its requests use, and every route is still served."""

from __future__ import annotations

import copy
import importlib.util
import json
import logging
from pathlib import Path
from types import ModuleType
from typing import Any

from crm_local.harness import Suite
from crm_local.runtime import LambdaContext
from crm_local.template import load_template

EVENTS = Path(__file__).resolve().parents[3] / "events"


def fresh_api() -> ModuleType:
    """The handler module as a new container imports it (not the suite's pooled one)."""
    spec = load_template().function("ApiFunction")
    module_spec = importlib.util.spec_from_file_location("fresh_api_app", spec.code_uri / "app.py")
    assert module_spec is not None
    assert module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def request(path: str, resource: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / "api_get_customer.json").read_text())
    event = copy.deepcopy(event)
    event.update(path=path, resource=resource, pathParameters=None)
    event["requestContext"]["resourcePath"] = resource
    return event


def test_a_new_container_has_no_family_registered() -> None:
    api = fresh_api()
    assert api._loaded == [api.platform]
    assert set(api.app.routes) == {"/openapi.json"}


def test_chalice_leaves_the_service_logger_to_powertools() -> None:
    # Chalice's logger has the service's name; a plain handler of its own there made
    # Powertools' append_keys fail (every request of a later container a 500).
    api = fresh_api()
    plain = [
        h for h in logging.getLogger("crm-api").handlers if type(h.formatter) is logging.Formatter
    ]
    assert plain == []
    api.logger.append_keys(probe="x")
    api.logger.remove_keys(["probe"])


def test_a_profile_request_loads_the_profile_routes_alone(suite: Suite) -> None:
    api = fresh_api()
    event = request("/customers/nobody", "/customers/{customer_id}")
    event["pathParameters"] = {"customer_id": "nobody"}
    out = api.app(event, LambdaContext("f"))
    assert out["statusCode"] == 404  # served by the profile routes: no such customer
    assert len(api._loaded) == 2
    assert "/segments" not in api.app.routes


def test_a_request_for_the_last_family_loads_that_family_alone(suite: Suite) -> None:
    api = fresh_api()
    out = api.app(request("/analytics/metrics", "/analytics/metrics"), LambdaContext("f"))
    assert out["statusCode"] == 200
    assert len(api._loaded) == 2
    assert "/customers" not in api.app.routes


def test_an_event_batch_loads_the_event_intake_alone(suite: Suite) -> None:
    api = fresh_api()
    event = request("/events", "/events")
    event["httpMethod"] = event["requestContext"]["httpMethod"] = "POST"
    event["body"] = json.dumps({"events": []})
    out = api.app(event, LambdaContext("f"))
    assert out["statusCode"] == 400  # served by the intake: an empty batch
    assert [d.path for routes in api._loaded[1:] for d in routes.docs] == ["/events"]


def test_every_route_is_found_among_its_paths_candidate_groups() -> None:
    # A route whose group is not a candidate of its first path segment would still be served
    # (every group is loaded then), but at the cost of loading them all.
    api = fresh_api()
    for group in list(api._UNLOADED):
        routes = group()
        for doc in routes.docs:
            candidates = api._CANDIDATES.get(doc.path.split("/")[1], ())
            assert group in candidates, f"{doc.method} {doc.path}: add {group.__name__}"


def test_a_route_no_family_has_is_answered_as_chalice_answers_it() -> None:
    api = fresh_api()
    out = api.app(request("/nowhere", "/nowhere"), LambdaContext("f"))
    assert out["statusCode"] in (403, 404, 405)
    assert len(api._loaded) == len(api.families())
