"""The analytics family's HTTP routes: the metric catalogue and one metric's series."""

from __future__ import annotations

from collections.abc import Callable

from crm.analytics.metrics import CHANNELS
from crm.analytics.models import MetricList, MetricResult
from crm.analytics.service import Analytics
from crm.auth import Permission as P
from crm.http import ApiRequest, QueryParam, Routes
from crm.models import CATEGORY_QUERY_PATTERN

FILTERS = (
    QueryParam(
        "from",
        "first day of the period (YYYY-MM-DD); default: the metric's default_days up to `to`",
    ),
    QueryParam("to", "last day of the period (YYYY-MM-DD); default today"),
    QueryParam("grain", "day, week or month (default day)", pattern="^(day|week|month)$"),
    QueryParam(
        "channel",
        "only this channel: the events' for orders, views and after-sales cases, the tickets' for "
        "SLA, escalations and response times (a shop's stores: offline_store or store, either "
        "reads both)",
        pattern=f"^({'|'.join(CHANNELS)})$",
    ),
    QueryParam(
        "category",
        "only this product category (or ticket category)",
        pattern=CATEGORY_QUERY_PATTERN,
    ),
    QueryParam("campaign", "only this campaign (campaign_roi)"),
)


def analytics_routes(analytics: Callable[[], Analytics]) -> Routes:
    routes = Routes(__name__)

    @routes.route(
        "/analytics/metrics",
        "GET",
        permission=P.READ_ANALYTICS,
        summary="The dashboard's metrics: names, titles (en, zh) and the filters each takes",
        response=MetricList,
    )
    def list_metrics(req: ApiRequest) -> MetricList:
        return analytics().list_metrics(req.who)

    @routes.route(
        "/analytics/metrics/{name}",
        "GET",
        permission=P.READ_ANALYTICS,
        summary="One metric for a period and filters, as chart series (cached per period)",
        response=MetricResult,
        query=FILTERS,
        errors=(400, 404),
    )
    def get_metric(req: ApiRequest) -> MetricResult:
        return analytics().metric(req.who, req.path["name"], req.query)

    return routes
