"""Segment family models: definitions, run summaries, the fitted model a run uses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints

from crm.models import Output, StrictInput

# `/segments/runs/{run_id}` would shadow the members of a segment named "runs".
RESERVED_NAMES = frozenset({"runs"})


def _not_reserved(name: str) -> str:
    if name in RESERVED_NAMES:
        raise ValueError("this name is reserved")
    return name


SegmentName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9_\-]{1,47}$"),
    AfterValidator(_not_reserved),
]

TIERS = {
    "high_value": "高价值",
    "potential": "潜力",
    "new": "新客",
    "dormant": "沉睡",
    "churn_risk": "流失预警",
    "regular": "普通",
}
RFM_SEGMENTS = (
    "champions", "loyal", "potential_loyalists", "new", "promising", "need_attention",
    "cant_lose", "at_risk", "hibernating", "lost",
)  # fmt: skip

NUMERIC_FIELDS = (
    "orders.order_count", "orders.total_spend", "orders.average_order_value",
    "orders.days_since_last_order", "behaviour.complaint_count", "behaviour.return_count",
    "behaviour.view_count", "points_balance", "scores.p_alive", "scores.clv_12m",
    "scores.recency_score", "scores.frequency_score", "scores.monetary_score",
)  # fmt: skip
TEXT_FIELDS = (
    "attributes.city", "attributes.gender", "attributes.locale", "scores.tier",
    "scores.rfm_segment", "orders.categories",
)  # fmt: skip


class Compare(StrictInput):
    """A comparison on a profile field, e.g. orders.total_spend gte 1000."""

    field: Literal[NUMERIC_FIELDS + TEXT_FIELDS]  # type: ignore[valid-type]
    op: Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "contains"]
    value: float | str | list[str]


class HasTag(StrictInput):
    has_tag: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class NoEventWithin(StrictInput):
    """No event of this type in the last `days` days ("dormant 30 days")."""

    no_event: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")]
    days: int = Field(ge=1, le=3650)


Condition = Compare | HasTag | NoEventWithin


class Rule(StrictInput):
    all: list[Condition] = Field(default_factory=list, max_length=20)
    any: list[Condition] = Field(default_factory=list, max_length=20)


class SegmentDefinition(StrictInput):
    name: SegmentName
    description: Annotated[str, StringConstraints(max_length=300)] = ""
    rule: Rule


class StoredDefinition(Output):
    name: str
    description: str
    rule: Rule
    updated_at: datetime
    updated_by: str


class SegmentSize(Output):
    run_id: str
    finished_at: datetime | None
    size: int


class SegmentSummary(Output):
    name: str
    kind: Literal["tier", "rfm", "rule"]
    label: str
    size: int | None = Field(description="members at the latest complete run")
    trend: list[SegmentSize] = Field(description="sizes at the recent runs, oldest first")


class RunProgress(Output):
    shards_total: int = Field(description="0 until the planner has queued the shards")
    shards_done: int
    profiles_scored: int
    profiles_written: int = Field(description="profiles whose scores or segments changed")
    attempts_retried: int = Field(description="failed shard attempts that were tried again")


class SegmentRun(Output):
    run_id: str
    status: Literal["planned", "running", "complete", "failed"] = Field(
        description="planned: sampling and fitting; running: shards queued; complete and "
        "failed are final"
    )
    started_at: datetime
    finished_at: datetime | None
    last_progress_at: datetime | None = Field(description="shards queued or last shard done")
    deadline_at: datetime | None = Field(description="failed by the watchdog if not done by")
    progress: RunProgress
    error: str | None = Field(description="why it failed: the shard and the kind of error")


class SegmentList(Output):
    latest_run: str | None = Field(description="the latest complete run, whose sizes these are")
    current_run: SegmentRun | None = Field(
        default=None, description="the newest run, when it is not the latest complete one"
    )
    segments: list[SegmentSummary]


class SegmentMembers(Output):
    name: str
    customer_ids: list[str]
    next_token: str | None = None


class RunRequested(Output):
    requested: bool = True
    detail: str


class Recommendation(Output):
    product: str
    category: str
    lift: float | None = None
    confidence: float | None = None
    because_of: str | None = None
    reason: str


class Recommendations(Output):
    customer_id: str
    run_id: str | None
    recommendations: list[Recommendation]
