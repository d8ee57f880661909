"""The analytics API's shapes (the dashboard page builds on them: docs/analytics.md)."""

from datetime import date, datetime
from typing import Literal

from pydantic import Field

from crm.analytics.metrics import Unit
from crm.models import Output

Grain = Literal["day", "week", "month"]


class Text(Output):
    en: str
    zh: str


class MetricInfo(Output):
    name: str
    title: Text
    filters: list[str] = Field(description="the filters (query parameters) the metric takes")
    default_days: int = Field(
        description="the period, in days ending today, when a request gives no `from`"
    )


class MetricList(Output):
    metrics: list[MetricInfo]
    today: date = Field(
        description="the day (UTC, as the lake's partitions) a period without `to` ends on, "
        "by the service's clock: a dashboard ends its default periods there, or on its user's "
        "own day when that is later"
    )


class Period(Output):
    from_: date = Field(alias="from", serialization_alias="from")
    to: date
    grain: Grain

    model_config = Output.model_config | {"populate_by_name": True, "serialize_by_alias": True}


class Point(Output):
    x: str
    y: float | None


class Series(Output):
    name: str
    label: Text
    points: list[Point]
    unit: Unit | None = Field(
        default=None,
        description="the series' own unit where it differs from the metric's (campaign_roi's "
        "revenue, uplift and ROI)",
    )


class MetricResult(Output):
    name: str
    title: Text
    unit: Unit
    chart: Literal["funnel", "line", "bar", "stacked_bar", "heatmap", "table"]
    period: Period
    filters: dict[str, str] = Field(description="the filters applied (channel, category, campaign)")
    series: list[Series]
    x_labels: dict[str, str] = Field(
        default={},
        description="display names of x values, shown beside them: campaign_roi's "
        "`campaign_id/variant` as the campaign's name and the variant",
    )
    computed_at: datetime
    cached: bool
