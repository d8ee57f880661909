"""The segments family's HTTP routes, each with the permission it needs."""

from __future__ import annotations

from collections.abc import Callable

from chalice.app import Response

from crm.auth import Permission as P
from crm.http import ApiRequest, QueryParam, Routes, json_response
from crm.segments.models import (
    Recommendations,
    RunRequested,
    SegmentDefined,
    SegmentDefinition,
    SegmentDeleted,
    SegmentDetail,
    SegmentList,
    SegmentMembers,
    SegmentPause,
    SegmentPauseResult,
    SegmentRun,
)
from crm.segments.service import SegmentCatalog


def segment_routes(catalog: Callable[[], SegmentCatalog]) -> Routes:
    routes = Routes(__name__)

    @routes.route(
        "/segments",
        "GET",
        permission=P.READ_SEGMENTS,
        summary="Segments (tiers, RFM segments, rule segments) with their sizes across runs",
        response=SegmentList,
    )
    def list_segments(req: ApiRequest) -> SegmentList:
        return catalog().list_segments(req.who)

    @routes.route(
        "/segments",
        "POST",
        permission=P.EDIT_SEGMENTS,
        summary="Define (201) or replace (200) a rule segment; a new or changed rule is filled "
        "over the whole base by a segment run started at once (status filling, run_id to follow)",
        body=SegmentDefinition,
        response=SegmentDefined,
        also_status=(201,),
    )
    def define_segment(req: ApiRequest) -> Response:
        defined = catalog().define_segment(req.who, req.model(SegmentDefinition))
        return json_response(defined, 201 if defined.created else 200)

    @routes.route(
        "/segments/{name}",
        "GET",
        permission=P.READ_SEGMENTS,
        summary="One segment: its rule (or, for tiers and RFM segments, what it is), its sizes "
        "across runs and whether it is paused",
        response=SegmentDetail,
        errors=(404,),
    )
    def get_segment(req: ApiRequest) -> SegmentDetail:
        return catalog().segment(req.who, req.path["name"])

    @routes.route(
        "/segments/{name}",
        "PATCH",
        permission=P.EDIT_SEGMENTS,
        summary="Pause a rule segment (its members stay as they are, nobody enters or leaves) "
        "or resume it (a resumed segment is filled by a segment run started then)",
        body=SegmentPause,
        response=SegmentPauseResult,
        errors=(404, 409),
    )
    def pause_segment(req: ApiRequest) -> SegmentPauseResult:
        return catalog().pause_segment(req.who, req.path["name"], req.model(SegmentPause))

    @routes.route(
        "/segments/{name}",
        "DELETE",
        permission=P.EDIT_SEGMENTS,
        summary="Delete a rule segment (tiers and RFM segments are the runs' and stay)",
        response=SegmentDeleted,
        errors=(404, 409),
    )
    def delete_segment(req: ApiRequest) -> SegmentDeleted:
        return catalog().delete_segment(req.who, req.path["name"])

    @routes.route(
        "/segments/{name}/members",
        "GET",
        permission=P.READ_SEGMENTS,
        summary="Members of a segment, a page at a time (tiers and RFM cells come from an "
        "eventually consistent index: a run's changes show within a second)",
        response=SegmentMembers,
        query=(
            QueryParam(
                "limit", "customers per page", "integer", minimum=1, maximum=1000, default=100
            ),
            QueryParam("next_token", "the previous page's next_token"),
        ),
        errors=(404,),
    )
    def segment_members(req: ApiRequest) -> SegmentMembers:
        return catalog().segment_members(
            req.who,
            req.path["name"],
            limit=req.int_query("limit"),
            page_token=req.query.get("next_token"),
        )

    @routes.route(
        "/segments/runs",
        "POST",
        permission=P.RUN_SEGMENTS,
        summary="Start a segment run now (it also runs every night)",
        response=RunRequested,
        status=202,
    )
    def request_segment_run(req: ApiRequest) -> RunRequested:
        return catalog().request_run(req.who)

    @routes.route(
        "/segments/runs/{run_id}",
        "GET",
        permission=P.READ_SEGMENTS,
        summary="A segment run's status, progress and, when it failed, why",
        response=SegmentRun,
        errors=(404,),
    )
    def segment_run(req: ApiRequest) -> SegmentRun:
        return catalog().segment_run(req.who, req.path["run_id"])

    @routes.route(
        "/customers/{customer_id}/recommendations",
        "GET",
        permission=P.READ_PROFILE,
        summary="Products to recommend: not bought yet, co-purchase associations, varied "
        "categories",
        response=Recommendations,
        query=(QueryParam("limit", "how many", "integer", minimum=1, maximum=50, default=10),),
        errors=(404,),
    )
    def recommendations(req: ApiRequest) -> Recommendations:
        return catalog().recommendations(
            req.who, req.path["customer_id"], limit=req.int_query("limit")
        )

    return routes
