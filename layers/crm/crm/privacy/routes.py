"""The privacy family's HTTP routes, each with the permission it needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chalice.app import Response

from crm.auth import Permission as P
from crm.errors import FieldProblem, InvalidInput
from crm.http import ApiRequest, QueryParam, Routes, json_response
from crm.privacy.audit import AuditLog
from crm.privacy.executor import PrivacyExecutor
from crm.privacy.models import (
    AuditPage,
    AuditVerification,
    Decision,
    ExportLink,
    Extension,
    FileRequest,
    RequestPage,
    RequestStatus,
    RequestView,
)
from crm.privacy.service import PrivacyRequests

AUDIT_PAGE = (
    QueryParam("after", "the sequence to read after (0: from the start)", "integer",
               minimum=0, maximum=999_999_999, default=0),
    QueryParam("limit", "entries per page", "integer", minimum=1, maximum=500, default=100),
)  # fmt: skip
LIST_QUERY = (
    QueryParam(
        "status",
        "requests in this status",
        required=True,
        pattern="^(" + "|".join(s.value for s in RequestStatus) + ")$",
    ),
    QueryParam("limit", "requests per page", "integer", minimum=1, maximum=100, default=20),
    QueryParam("next_token", "the previous page's next_token"),
)


@dataclass(frozen=True)
class PrivacyParts:
    requests: PrivacyRequests
    executor: PrivacyExecutor
    audit: AuditLog


def privacy_routes(family: Callable[[], PrivacyParts]) -> Routes:
    routes = Routes(__name__)

    @routes.route(
        "/privacy/requests",
        "POST",
        permission=P.FILE_PRIVACY_REQUESTS,
        summary=(
            "File a privacy request (access, erasure, rectification, consent withdrawal, "
            "restriction) for yourself, or for a customer as an agent (the customer confirms); "
            "a duplicate of an open request answers 200 with duplicate_of"
        ),
        body=FileRequest,
        response=RequestView,
        status=201,
        also_status=(200,),
        errors=(404,),
    )
    def file_privacy_request(req: ApiRequest) -> RequestView | Response:
        view, new = family().requests.file(req.who, req.model(FileRequest))
        return view if new else json_response(view, 200)

    @routes.route(
        "/privacy/requests",
        "GET",
        permission=P.APPROVE_PRIVACY_REQUESTS,
        summary="Privacy requests in a status, newest first (privacy officers)",
        response=RequestPage,
        query=LIST_QUERY,
    )
    def list_privacy_requests(req: ApiRequest) -> RequestPage:
        raw = req.required_query("status")
        if raw not in RequestStatus.__members__.values():
            raise InvalidInput(
                "status is not a request status", [FieldProblem("status", "unknown")]
            )
        status = RequestStatus(raw)
        return family().requests.list(
            req.who, status, req.int_query("limit"), req.query.get("next_token")
        )

    @routes.route(
        "/privacy/requests/{request_id}",
        "GET",
        permission=P.READ_PRIVACY_REQUESTS,
        summary=(
            "A privacy request: status, deadline, each store's step and, after an erasure, "
            "the verification proof (a customer reads their own)"
        ),
        response=RequestView,
        errors=(404,),
    )
    def get_privacy_request(req: ApiRequest) -> RequestView:
        return family().requests.get(req.who, req.path["request_id"])

    @routes.route(
        "/privacy/requests/{request_id}/approve",
        "POST",
        permission=P.APPROVE_PRIVACY_REQUESTS,
        summary="Approve a request awaiting approval: its store steps are queued (the body, an "
        "optional reason code, may be left out)",
        body=Decision,
        body_optional=True,
        response=RequestView,
        errors=(404, 409),
    )
    def approve_privacy_request(req: ApiRequest) -> RequestView:
        return family().requests.approve(req.who, req.path["request_id"], req.model(Decision))

    @routes.route(
        "/privacy/requests/{request_id}/reject",
        "POST",
        permission=P.APPROVE_PRIVACY_REQUESTS,
        summary="Reject a request awaiting approval or confirmation, with a reason code",
        body=Decision,
        body_optional=True,
        response=RequestView,
        errors=(404, 409),
    )
    def reject_privacy_request(req: ApiRequest) -> RequestView:
        return family().requests.reject(req.who, req.path["request_id"], req.model(Decision))

    @routes.route(
        "/privacy/requests/{request_id}/confirm",
        "POST",
        permission=P.FILE_PRIVACY_REQUESTS,
        summary="Confirm, with the customer's own token, a request an agent filed for them",
        response=RequestView,
        errors=(404, 409),
    )
    def confirm_privacy_request(req: ApiRequest) -> RequestView:
        return family().requests.confirm(req.who, req.path["request_id"])

    @routes.route(
        "/privacy/requests/{request_id}/extend",
        "POST",
        permission=P.APPROVE_PRIVACY_REQUESTS,
        summary=(
            "Extend an open request's deadline once (GDPR by two months, CCPA by 45 days; "
            "PIPL allows none), publishing the notice for the customer"
        ),
        body=Extension,
        response=RequestView,
        errors=(404, 409),
    )
    def extend_privacy_request(req: ApiRequest) -> RequestView:
        return family().requests.extend(req.who, req.path["request_id"], req.model(Extension))

    @routes.route(
        "/privacy/requests/{request_id}/export",
        "GET",
        permission=P.READ_PRIVACY_REQUESTS,
        summary=(
            "The customer's access bundle (a zip of JSON and CSV): an expiring presigned URL, "
            "for the customer's own token only"
        ),
        response=ExportLink,
        errors=(404, 409),
    )
    def get_privacy_export(req: ApiRequest) -> ExportLink:
        return family().executor.export_link(req.who, req.path["request_id"])

    @routes.route(
        "/privacy/audit",
        "GET",
        permission=P.READ_PRIVACY_AUDIT,
        summary="Read the privacy audit trail in its chain's order, a page at a time (ids, "
        "actions and field names: no personal data)",
        response=AuditPage,
        query=AUDIT_PAGE,
    )
    def read_privacy_audit(req: ApiRequest) -> AuditPage:
        return family().audit.page(req.int_query("after"), req.int_query("limit"))

    @routes.route(
        "/privacy/audit/verify",
        "GET",
        permission=P.READ_PRIVACY_AUDIT,
        summary="Verify the privacy audit trail's hash chain; names the first broken link",
        response=AuditVerification,
    )
    def verify_privacy_audit(req: ApiRequest) -> AuditVerification:
        return family().audit.verify()

    return routes
