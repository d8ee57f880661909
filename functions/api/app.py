"""HTTP API for client apps: a Chalice app that API Gateway invokes (Handler: app.app).

Each family declares its routes (and the permission each needs) in `crm/<family>/routes.py`;
this module registers them, serves the OpenAPI document, and logs each request with its
Lambda request id and correlation id.
"""

from __future__ import annotations

import os
import time
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from chalice.app import Chalice, Request, Response

from crm.analytics import analytics_routes
from crm.campaigns.journey_routes import journey_routes
from crm.campaigns.routes import dispatch_routes
from crm.campaigns.send_routes import send_routes
from crm.coldstart import initialized
from crm.composition import root
from crm.http import ApiRequest, Routes, json_response
from crm.openapi import build_openapi
from crm.privacy import privacy_routes
from crm.profiles.routes import profile_routes
from crm.segments.routes import segment_routes
from crm.snapstart import before_snapshot
from crm.tickets import aftersales_routes
from crm.tickets.routes import ticket_routes

logger = Logger()
app = Chalice(app_name="crm-api")

platform = Routes(__name__)
FAMILIES = [
    platform,
    profile_routes(lambda: root().profiles),
    segment_routes(lambda: root().segments),
    # ---- campaigns: S
    send_routes(lambda: root().send_parts),
    ticket_routes(lambda: root().tickets),
    journey_routes(lambda: root().journeys),  # campaigns: J
    # campaigns: D
    dispatch_routes(lambda: root().campaign_dispatch, lambda: root().campaign_templates),
    aftersales_routes(lambda: root().aftersales, lambda: root().product_feedback),
    privacy_routes(lambda: root().privacy_parts),
    analytics_routes(lambda: root().analytics),
]
CORRELATION_HEADER = "X-Correlation-Id"


@cache
def _openapi() -> dict[str, Any]:
    docs = [doc for routes in FAMILIES for doc in routes.docs]
    return build_openapi(docs, title="Serverless CRM API", version="0.1.0")


@platform.route("/openapi.json", "GET", permission=None, summary="This API's OpenAPI document")
def get_openapi(req: ApiRequest) -> Response:
    return json_response(_openapi(), 200)


for _routes in FAMILIES:
    app.register_blueprint(_routes.blueprint)

before_snapshot(lambda: root().prime("dynamodb", "kms", "sqs", "secretsmanager"))


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
