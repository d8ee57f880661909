"""After-sales and product-feedback HTTP routes, each with the permission it needs."""

from __future__ import annotations

from collections.abc import Callable

from crm.auth import Permission as P
from crm.http import ApiRequest, QueryParam, Routes
from crm.models import CATEGORY_QUERY_PATTERN
from crm.tickets.aftersales import AfterSales
from crm.tickets.aftersales_models import (
    ID_PATTERN,
    AfterSalesCase,
    CaseList,
    CaseRequest,
    StageAdvance,
)
from crm.tickets.feedback import PERIOD_PATTERN, ProductFeedback, ProductFeedbackBook


def aftersales_routes(
    cases: Callable[[], AfterSales], feedback: Callable[[], ProductFeedbackBook]
) -> Routes:
    routes = Routes(__name__)

    @routes.route(
        "/aftersales",
        "POST",
        permission=P.OPEN_TICKET,
        summary="Open an after-sales case (return, exchange, refund, repair) for an order; a "
        "small refund on an order the CRM knows is paid at once (先行赔付), once per order; "
        "409 when another case of the order changed what it has left meanwhile (try again)",
        body=CaseRequest,
        response=AfterSalesCase,
        status=201,
        errors=(404, 409),
    )
    def open_aftersales_case(req: ApiRequest) -> AfterSalesCase:
        return cases().open_case(req.who, req.model(CaseRequest))

    @routes.route(
        "/aftersales/{case_id}",
        "GET",
        permission=P.READ_TICKETS,
        summary="An after-sales case with its timeline: each stage, when, and its target time",
        response=AfterSalesCase,
        errors=(404,),
    )
    def get_aftersales_case(req: ApiRequest) -> AfterSalesCase:
        return cases().case(req.who, req.path["case_id"])

    @routes.route(
        "/aftersales/{case_id}/stages",
        "POST",
        permission=P.ADVANCE_AFTERSALES,
        summary="Move a case to its next stage (upstream systems; once per event id). 409 names "
        "the stages it may move to",
        body=StageAdvance,
        response=AfterSalesCase,
        errors=(404, 409),
    )
    def advance_aftersales_case(req: ApiRequest) -> AfterSalesCase:
        return cases().advance(req.who, req.path["case_id"], req.model(StageAdvance))

    @routes.route(
        "/customers/{customer_id}/aftersales",
        "GET",
        permission=P.READ_TICKETS,
        summary="A customer's after-sales cases, newest first, with their timelines",
        response=CaseList,
    )
    def list_customer_aftersales(req: ApiRequest) -> CaseList:
        return cases().customer_cases(req.who, req.path["customer_id"])

    @routes.route(
        "/feedback/products",
        "GET",
        permission=P.READ_FEEDBACK,
        summary="Complaint categories, return reasons and risk keywords of one SKU or product "
        "category in one month (analysts and support)",
        response=ProductFeedback,
        query=(
            QueryParam("sku", "a SKU (give sku or category, not both)", pattern=ID_PATTERN),
            QueryParam(
                "category",
                "a product category, as the order events name it (or give sku)",
                pattern=CATEGORY_QUERY_PATTERN,
            ),
            QueryParam(
                "period", "a month, 2026-11; this month when absent", pattern=PERIOD_PATTERN
            ),
        ),
    )
    def get_product_feedback(req: ApiRequest) -> ProductFeedback:
        q = req.query
        return feedback().read(req.who, q.get("sku"), q.get("category"), q.get("period"))

    return routes
