"""The profiles family's HTTP routes that change a profile (an edit, consent, tags, points, a
merge) or read what those keep (the points ledger, merge suggestions), each with the
permission it needs; `routes` has those that create, find and read customers."""

from __future__ import annotations

from collections.abc import Callable

from crm.auth import Permission as P
from crm.http import ApiRequest, QueryParam, Routes
from crm.profiles.change_models import (
    ConsentChange,
    ConsentView,
    EditProfile,
    MergeCustomers,
    MergeSuggestionPage,
    PointsChange,
    PointsView,
    TagChange,
    TagsView,
)
from crm.profiles.family import Profiles
from crm.profiles.models import Customer360, CustomerSelfView, MergeSuggestionView

PAGE = (
    QueryParam("limit", "entries per page", "integer", minimum=1, maximum=100, default=20),
    QueryParam("next_token", "the previous page's next_token"),
)


def profile_change_routes(family: Callable[[], Profiles]) -> Routes:
    routes = Routes(__name__)

    @routes.route(
        "/customers/{customer_id}",
        "PATCH",
        permission=P.EDIT_PROFILE,
        summary=(
            "Edit attributes; the body's version must be the profile's current version. A "
            "customer's new phone or email waits for verification (pending_verification)"
        ),
        body=EditProfile,
        response=(Customer360, CustomerSelfView),
        errors=(404, 409),
    )
    def edit_customer(req: ApiRequest) -> Customer360 | CustomerSelfView:
        return family().edits.edit_profile(req.who, req.path["customer_id"], req.model(EditProfile))

    @routes.route(
        "/customers/{customer_id}/merge",
        "POST",
        permission=P.MERGE_PROFILES,
        summary="Merge another profile of the same person into this one",
        body=MergeCustomers,
        response=Customer360,
        errors=(404, 409),
    )
    def merge_customers(req: ApiRequest) -> Customer360:
        return family().identity.merge_customers(
            req.who, req.path["customer_id"], req.model(MergeCustomers)
        )

    @routes.route(
        "/merge-suggestions",
        "GET",
        permission=P.MERGE_PROFILES,
        summary="Pending merge suggestions, oldest first",
        response=MergeSuggestionPage,
        query=PAGE,
    )
    def pending_merges(req: ApiRequest) -> MergeSuggestionPage:
        return family().merge_suggestions.pending(
            req.who, limit=req.int_query("limit"), page_token=req.query.get("next_token")
        )

    @routes.route(
        "/merge-suggestions/{suggestion_id}/approve",
        "POST",
        permission=P.MERGE_PROFILES,
        summary="Merge the suggested profiles into the oldest of them",
        response=MergeSuggestionView,
        errors=(404, 409),
    )
    def approve_merge(req: ApiRequest) -> MergeSuggestionView:
        return family().merge_suggestions.approve(req.who, req.path["suggestion_id"])

    @routes.route(
        "/merge-suggestions/{suggestion_id}/dismiss",
        "POST",
        permission=P.MERGE_PROFILES,
        summary="Keep the suggested profiles apart",
        response=MergeSuggestionView,
        errors=(404, 409),
    )
    def dismiss_merge(req: ApiRequest) -> MergeSuggestionView:
        return family().merge_suggestions.dismiss(req.who, req.path["suggestion_id"])

    @routes.route(
        "/customers/{customer_id}/consent",
        "PUT",
        permission=P.EDIT_CONSENT,
        summary="Record a consent decision for one purpose",
        body=ConsentChange,
        response=ConsentView,
        errors=(404, 409),
    )
    def change_consent(req: ApiRequest) -> ConsentView:
        return family().edits.change_consent(
            req.who, req.path["customer_id"], req.model(ConsentChange)
        )

    @routes.route(
        "/customers/{customer_id}/tags",
        "POST",
        permission=P.EDIT_TAGS,
        summary="Add and remove tags",
        body=TagChange,
        response=TagsView,
        errors=(404, 409),
    )
    def change_tags(req: ApiRequest) -> TagsView:
        return family().edits.change_tags(req.who, req.path["customer_id"], req.model(TagChange))

    @routes.route(
        "/customers/{customer_id}/points",
        "GET",
        permission=P.READ_PROFILE,
        summary="Loyalty points balance and ledger, newest first",
        response=PointsView,
        query=PAGE,
        errors=(404,),
    )
    def read_points(req: ApiRequest) -> PointsView:
        return family().points.points_view(
            req.who,
            req.path["customer_id"],
            limit=req.int_query("limit"),
            page_token=req.query.get("next_token"),
        )

    @routes.route(
        "/customers/{customer_id}/points",
        "POST",
        permission=P.ADJUST_POINTS,
        summary="Earn or redeem points (idempotent per txn_id; never below zero)",
        body=PointsChange,
        response=PointsView,
        errors=(404, 409),
    )
    def change_points(req: ApiRequest) -> PointsView:
        return family().points.change_points(
            req.who, req.path["customer_id"], req.model(PointsChange)
        )

    return routes
