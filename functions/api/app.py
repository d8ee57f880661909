"""HTTP API for client apps: a Chalice app that API Gateway invokes (Handler: app.app).

Views only parse, call one service function and shape the response; see crm.http.JsonApi.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from chalice.app import Chalice, Request, Response

from crm.http import ApiRequest, JsonApi, QueryParam, json_response
from crm.openapi import build_openapi
from crm.profiles.activity import MAX_BATCH_BYTES, EventBatch, EventsAccepted
from crm.profiles.ingest import event_ingestion
from crm.profiles.models import (
    ConsentChange,
    Customer360,
    EditProfile,
    MergeCustomers,
    PointsChange,
    PointsView,
    TagChange,
    UpsertCustomer,
    UpsertResult,
)
from crm.profiles.service import profile_service
from crm.segments.catalog import segment_catalog
from crm.segments.models import (
    Recommendations,
    RunRequested,
    SegmentDefinition,
    SegmentList,
    SegmentMembers,
    StoredDefinition,
)

logger = Logger()
app = Chalice(app_name="crm-api")
api = JsonApi(app)


@app.middleware("http")
def access_log(request: Request, get_response: Any) -> Response:
    # Method, route and status only: paths hold ids, bodies may hold PII.
    started = time.perf_counter()
    response: Response = get_response(request)
    logger.info(
        "request",
        extra={
            "method": request.method,
            "route": request.context.get("resourcePath"),
            "status": response.status_code,
            "ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )
    return response


@cache
def _openapi() -> dict[str, Any]:
    return build_openapi(api.docs, title="Serverless CRM API", version="0.1.0")


@api.route("/openapi.json", "GET", summary="This API's OpenAPI document", public=True)
def get_openapi(req: ApiRequest) -> Response:
    return json_response(_openapi(), 200)


@api.route(
    "/customers",
    "POST",
    summary="Create a customer, or find the profile these identities belong to",
    body=UpsertCustomer,
    response=UpsertResult,
    errors=(409,),
)
def upsert_customer(req: ApiRequest) -> Response:
    result = profile_service().upsert_customer(req.who, req.model(UpsertCustomer))
    return json_response(result, 201 if result.created else 200)


@api.route(
    "/customers/{customer_id}",
    "GET",
    summary="Read the 360° view of a customer, masked by the caller's role",
    response=Customer360,
    errors=(404,),
)
def read_customer(req: ApiRequest) -> Customer360:
    return profile_service().read_customer_360(req.who, req.path["customer_id"])


@api.route(
    "/customers/{customer_id}",
    "PATCH",
    summary="Edit attributes; the body's version must be the profile's current version",
    body=EditProfile,
    response=Customer360,
    errors=(404, 409),
)
def edit_customer(req: ApiRequest) -> Customer360:
    return profile_service().edit_profile(req.who, req.path["customer_id"], req.model(EditProfile))


@api.route(
    "/customers/{customer_id}/merge",
    "POST",
    summary="Merge another profile of the same person into this one",
    body=MergeCustomers,
    response=Customer360,
    errors=(404, 409),
)
def merge_customers(req: ApiRequest) -> Customer360:
    return profile_service().merge_customers(
        req.who, req.path["customer_id"], req.model(MergeCustomers)
    )


@api.route(
    "/customers/{customer_id}/consent",
    "PUT",
    summary="Record a consent decision for one purpose",
    body=ConsentChange,
    errors=(404, 409),
)
def change_consent(req: ApiRequest) -> dict[str, Any]:
    consent = profile_service().change_consent(
        req.who, req.path["customer_id"], req.model(ConsentChange)
    )
    return {"consent": {k.value: v.model_dump(mode="json") for k, v in consent.items()}}


@api.route(
    "/customers/{customer_id}/tags",
    "POST",
    summary="Add and remove tags",
    body=TagChange,
    errors=(404, 409),
)
def change_tags(req: ApiRequest) -> dict[str, Any]:
    tags = profile_service().change_tags(req.who, req.path["customer_id"], req.model(TagChange))
    return {"tags": {k: v.model_dump(mode="json") for k, v in tags.items()}}


@api.route(
    "/customers/{customer_id}/points",
    "GET",
    summary="Loyalty points balance and ledger, newest first",
    response=PointsView,
    query=(
        QueryParam("limit", "entries per page, 1 to 100", "integer"),
        QueryParam("next_token", "the previous page's next_token"),
    ),
    errors=(404,),
)
def read_points(req: ApiRequest) -> PointsView:
    return profile_service().points_view(
        req.who,
        req.path["customer_id"],
        limit=req.int_query("limit", 20, 1, 100),
        page_token=req.query.get("next_token"),
    )


@api.route(
    "/customers/{customer_id}/points",
    "POST",
    summary="Earn or redeem points (idempotent per txn_id; never below zero)",
    body=PointsChange,
    response=PointsView,
    errors=(404, 409),
)
def change_points(req: ApiRequest) -> PointsView:
    return profile_service().change_points(
        req.who, req.path["customer_id"], req.model(PointsChange)
    )


@api.route(
    "/events",
    "POST",
    summary="Send a batch of order, browsing and after-sales events to be folded into profiles",
    body=EventBatch,
    response=EventsAccepted,
    status=202,
    errors=(413,),
    max_body_bytes=MAX_BATCH_BYTES,
)
def post_events(req: ApiRequest) -> EventsAccepted:
    return event_ingestion().accept_events(req.who, req.model(EventBatch))


@api.route(
    "/segments",
    "GET",
    summary="Segments (tiers, RFM segments, rule segments) with their sizes across runs",
    response=SegmentList,
)
def list_segments(req: ApiRequest) -> SegmentList:
    return segment_catalog().list_segments(req.who)


@api.route(
    "/segments",
    "POST",
    summary="Define or replace a rule segment",
    body=SegmentDefinition,
    response=StoredDefinition,
)
def define_segment(req: ApiRequest) -> StoredDefinition:
    return segment_catalog().define_segment(req.who, req.model(SegmentDefinition))


@api.route(
    "/segments/{name}/members",
    "GET",
    summary="Members of a segment, a page at a time",
    response=SegmentMembers,
    query=(
        QueryParam("limit", "customers per page, 1 to 1000", "integer"),
        QueryParam("next_token", "the previous page's next_token"),
    ),
    errors=(404,),
)
def segment_members(req: ApiRequest) -> SegmentMembers:
    return segment_catalog().segment_members(
        req.who,
        req.path["name"],
        limit=req.int_query("limit", 100, 1, 1000),
        page_token=req.query.get("next_token"),
    )


@api.route(
    "/segments/runs",
    "POST",
    summary="Start a segment run now (it also runs every night)",
    response=RunRequested,
    status=202,
)
def request_segment_run(req: ApiRequest) -> RunRequested:
    return segment_catalog().request_run(req.who)


@api.route(
    "/customers/{customer_id}/recommendations",
    "GET",
    summary="Products to recommend: not bought yet, co-purchase associations, varied categories",
    response=Recommendations,
    query=(QueryParam("limit", "how many, 1 to 50", "integer"),),
    errors=(404,),
)
def recommendations(req: ApiRequest) -> Recommendations:
    return segment_catalog().recommendations(
        req.who, req.path["customer_id"], limit=req.int_query("limit", 10, 1, 50)
    )
