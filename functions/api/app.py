"""HTTP API for client apps: a Chalice app that API Gateway invokes (Handler: app.app).

Each family declares its routes (and the permission each needs) in `crm/<family>/routes.py`;
this module registers them, serves the OpenAPI document, and logs each request with its
Lambda request id and correlation id.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from chalice.app import Chalice, Request, Response

from crm.coldstart import initialized
from crm.composition import root
from crm.http import ApiRequest, Routes, json_response
from crm.snapstart import before_snapshot

logger = Logger()
CORRELATION_HEADER = "X-Correlation-Id"


# Each family's routes (the profiles' in three groups), in the order they are registered. A
# group's routes module (and its models) is imported when a request first needs one of its
# routes, not at the cold start: the first request of a container pays for its own group, not
# for the others (the event intake comes first, then the other profile routes, as most
# requests are theirs; the historical import's, rare and large, apart). The OpenAPI document,
# the SnapStart snapshot and the tests load them all (`families`).
def _events() -> Routes:
    from crm.profiles.event_routes import event_routes

    return event_routes(lambda: root().event_intake)


def _profiles() -> Routes:
    from crm.profiles.routes import profile_routes

    return profile_routes(lambda: root().profiles)


def _profile_changes() -> Routes:
    from crm.profiles.change_routes import profile_change_routes

    return profile_change_routes(lambda: root().profiles)


def _imports() -> Routes:
    from crm.profiles.import_routes import import_routes

    return import_routes(lambda: root().import_intake)


def _segments() -> Routes:
    from crm.segments.routes import segment_routes

    return segment_routes(lambda: root().segments)


def _sends() -> Routes:  # ---- campaigns: S
    from crm.campaigns.send_routes import send_routes

    return send_routes(lambda: root().send_parts)


def _tickets() -> Routes:
    from crm.tickets.routes import ticket_routes

    return ticket_routes(lambda: root().tickets)


def _journeys() -> Routes:  # campaigns: J
    from crm.campaigns.journey_routes import journey_routes

    return journey_routes(lambda: root().journeys)


def _dispatch() -> Routes:  # campaigns: D
    from crm.campaigns.routes import dispatch_routes

    return dispatch_routes(lambda: root().campaign_dispatch, lambda: root().campaign_templates)


def _aftersales() -> Routes:
    from crm.tickets.aftersales_routes import aftersales_routes

    return aftersales_routes(lambda: root().aftersales, lambda: root().product_feedback)


def _privacy() -> Routes:
    from crm.privacy import privacy_routes

    return privacy_routes(lambda: root().privacy_parts)


def _analytics() -> Routes:
    from crm.analytics import analytics_routes

    return analytics_routes(lambda: root().analytics)


_UNLOADED: list[Callable[[], Routes]] = [
    _events, _profiles, _profile_changes, _imports, _segments, _sends, _tickets, _journeys,
    _dispatch, _aftersales, _privacy, _analytics,
]  # fmt: skip

# The groups that may serve a path, by its first segment, tried in this order: a request loads
# the groups of its own segment only (`POST /events` the intake, not the customer routes before
# it). tests/integration/platform/test_api_cold_start.py checks that every declared route is
# found this way; a path of no listed segment loads every group (as an unknown one does).
_CANDIDATES: dict[str, tuple[Callable[[], Routes], ...]] = {
    "events": (_events,),
    "customers": (_profiles, _profile_changes, _segments, _tickets, _aftersales),
    "merge-suggestions": (_profile_changes,),
    "imports": (_imports,),
    "segments": (_segments,),
    "campaigns": (_sends, _journeys, _dispatch),
    "tickets": (_tickets,),
    "aftersales": (_aftersales,),
    "feedback": (_aftersales,),
    "privacy": (_privacy,),
    "analytics": (_analytics,),
}


class Api(Chalice):
    """Chalice, with each family's routes registered when a request first needs them."""

    def __call__(self, event: Any, context: Any) -> dict[str, Any]:
        request = event.get("requestContext") or {}
        path, method = str(request.get("resourcePath")), request.get("httpMethod")
        if method not in self.routes.get(path, {}):
            for group in _CANDIDATES.get(path.split("/")[1] if "/" in path else "", ()):
                _load(group)
                if method in self.routes.get(path, {}):
                    break
            else:
                # A route no group has loads every group, then Chalice answers it as before.
                families()
        return super().__call__(event, context)


# Chalice's own logger is named after the app, as Powertools' is after the service: left to
# configure logs, Chalice puts a plain StreamHandler on it when it finds none, and Powertools'
# append_keys then reads that handler's formatter (an AttributeError, every request a 500).
app = Api(app_name="crm-api", configure_logs=False)
platform = Routes(__name__)
_loaded: list[Routes] = [platform]


def _load(group: Callable[[], Routes]) -> None:
    if group not in _UNLOADED:
        return
    _UNLOADED.remove(group)
    routes = group()
    app.register_blueprint(routes.blueprint)
    _loaded.append(routes)


def families() -> list[Routes]:
    """Every family's routes, all registered on the app."""
    for group in list(_UNLOADED):
        _load(group)
    return list(_loaded)


@cache
def _openapi() -> dict[str, Any]:
    from crm.openapi import build_openapi

    docs = [doc for routes in families() for doc in routes.docs]
    return build_openapi(docs, title="Serverless CRM API", version="0.1.0")


@platform.route("/openapi.json", "GET", permission=None, summary="This API's OpenAPI document")
def get_openapi(req: ApiRequest) -> Response:
    return json_response(_openapi(), 200)


app.register_blueprint(platform.blueprint)


def _prime() -> None:
    # A restored snapshot holds every family's routes: loading one is no restore's work.
    families()
    root().prime("dynamodb", "kms", "sqs", "secretsmanager")


before_snapshot(_prime)


def _cors_headers(request: Request) -> dict[str, str]:
    """API Gateway answers the preflight; with a proxy integration the function itself must
    put the allowed origin on every response."""
    allowed = os.environ.get("CORS_ALLOW_ORIGIN", "")
    if not allowed:
        return {}
    headers = {"Access-Control-Expose-Headers": CORRELATION_HEADER}
    if allowed == "*":
        return {**headers, "Access-Control-Allow-Origin": "*"}
    origin = request.headers.get("origin", "")
    if origin in {o.strip() for o in allowed.split(",")}:
        return {**headers, "Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return headers


@app.middleware("http")
def access_log(request: Request, get_response: Any) -> Response:
    # Method, route and status only: paths hold ids, bodies may hold PII.
    started = time.perf_counter()
    context = request.context or {}
    correlation_id = request.headers.get(CORRELATION_HEADER.lower()) or context.get("requestId")
    lambda_context = getattr(app, "lambda_context", None)
    logger.append_keys(
        function_request_id=getattr(lambda_context, "aws_request_id", None),
        correlation_id=correlation_id,
    )
    try:
        response: Response = get_response(request)
        logger.info(
            "request",
            extra={
                "method": request.method,
                "route": context.get("resourcePath"),
                "status": response.status_code,
                "ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
    finally:
        logger.remove_keys(["function_request_id", "correlation_id"])
        root().flush_facts()  # analytics: the request's ticket and campaign facts to the lake
    if correlation_id:
        response.headers[CORRELATION_HEADER] = str(correlation_id)
    response.headers.update(_cors_headers(request))
    return response


# The end of this function's init: what it built is frozen for the collector (crm/coldstart.py).
initialized()
