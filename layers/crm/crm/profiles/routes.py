"""The profiles family's HTTP routes that create, find and read customers, each with the
permission it needs. The family's other routes are apart, so that the API's most frequent
first requests load what they use alone: those that change a profile (edits, consent, tags,
points, merges) in `change_routes`, `POST /events` in `event_routes` (most requests are
events), the historical imports' in `import_routes` (rare, and their models are large)."""

from __future__ import annotations

from collections.abc import Callable

from chalice.app import Response

from crm.auth import Permission as P
from crm.http import ApiRequest, Routes, json_response
from crm.profiles.family import Profiles
from crm.profiles.models import (
    Customer360,
    CustomerMatches,
    CustomerSelfView,
    FindCustomers,
    UpsertCustomer,
    UpsertResult,
)


def profile_routes(family: Callable[[], Profiles]) -> Routes:
    routes = Routes(__name__)

    @routes.route(
        "/customers",
        "POST",
        permission=P.CREATE_PROFILE,
        summary=(
            "Create a customer (201), or find the profile these identities belong to (200); "
            "identities of several profiles merge them if the caller may merge, and otherwise "
            "change nothing and queue a merge suggestion for a manager (202)"
        ),
        body=UpsertCustomer,
        response=UpsertResult,
        also_status=(201, 202),
        errors=(409, 421),
    )
    def upsert_customer(req: ApiRequest) -> Response:
        result = family().identity.upsert_customer(req.who, req.model(UpsertCustomer))
        status = 202 if result.merge_suggestion else 201 if result.created else 200
        return json_response(result, status)

    @routes.route(
        "/customers/search",
        "POST",
        permission=P.FIND_CUSTOMERS,
        summary=(
            "Find customers by phone, email, a channel's id or an order id, creating nothing "
            "(an empty list when nothing matches); PII goes in the body, never in the URL"
        ),
        body=FindCustomers,
        response=CustomerMatches,
    )
    def find_customers(req: ApiRequest) -> CustomerMatches:
        return family().lookup.find_customers(req.who, req.model(FindCustomers))

    @routes.route(
        "/customers/{customer_id}",
        "GET",
        permission=P.READ_PROFILE,
        summary=(
            "Read a customer: staff get the 360° view masked by role, a customer their own "
            "view without internal marketing data"
        ),
        response=(Customer360, CustomerSelfView),
        errors=(404,),
    )
    def read_customer(req: ApiRequest) -> Customer360 | CustomerSelfView:
        return family().views.read_customer_360(req.who, req.path["customer_id"])

    return routes
