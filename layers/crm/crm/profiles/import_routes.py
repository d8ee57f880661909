"""The historical import's HTTP routes, apart from the profiles family's other routes: a shop
imports its history once or twice, and the import's models (a whole shop's customers and
events, with their limits) are not what any other first request of a container should load
(docs/architecture.md, "Cold starts")."""

from __future__ import annotations

from collections.abc import Callable

from chalice.app import Response

from crm.auth import Permission as P
from crm.http import ApiRequest, Routes, json_response
from crm.profiles.import_intake import ImportIntake
from crm.profiles.import_models import (
    MAX_IMPORT_BYTES,
    MAX_IMPORT_CUSTOMERS,
    MAX_IMPORT_EVENTS,
    HistoryImport,
    ImportAccepted,
    ImportStatusView,
)


def import_routes(imports: Callable[[], ImportIntake]) -> Routes:
    routes = Routes(__name__)

    @routes.route(
        "/imports",
        "POST",
        permission=P.IMPORT_HISTORY,
        summary=(
            f"Import a shop's customers with their history (at most {MAX_IMPORT_CUSTOMERS} "
            f"customers and {MAX_IMPORT_EVENTS} events, {MAX_IMPORT_BYTES // 2**20} MB): all or "
            "none (400 naming "
            "customers.N.<field>), then created or matched by identity and folded in the "
            "background without announcing anything (no journey starts for old orders); "
            "follow it at the Location returned, then start a segment run"
        ),
        body=HistoryImport,
        response=ImportAccepted,
        status=202,
        errors=(413, 421),
        max_body_bytes=MAX_IMPORT_BYTES,
    )
    def post_import(req: ApiRequest) -> Response:
        accepted = imports().accept(req.who, req.model(HistoryImport))
        return json_response(accepted, 202, {"Location": f"/imports/{accepted.import_id}"})

    @routes.route(
        "/imports/{import_id}",
        "GET",
        permission=P.IMPORT_HISTORY,
        summary="An import's status: queued, running (chunks done), done or failed, with counts "
        "and the refs of customers that failed",
        response=ImportStatusView,
        errors=(404,),
    )
    def read_import(req: ApiRequest) -> ImportStatusView:
        return imports().status(req.who, req.path["import_id"])

    return routes
