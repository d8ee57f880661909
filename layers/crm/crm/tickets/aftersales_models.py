"""After-sales cases: the API's shapes, and each kind's stages with their target times."""

from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BeforeValidator, ConfigDict, Field, StringConstraints, WithJsonSchema

from crm.aftersales_codes import KIND_OF_EVENT_CASE, ReturnReason, case_kind
from crm.models import NOT_BLANK, Category, Output, StrictInput, UtcDatetime
from crm.profiles import Money


class CaseKind(StrEnum):
    RETURN = "return"  # goods back, money back
    EXCHANGE = "exchange"  # goods back, other goods out
    REFUND = "refund"  # money back, goods kept (仅退款)
    REPAIR = "repair"  # goods back, repaired, sent back


class Stage(StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    PICKUP_SCHEDULED = "pickup_scheduled"
    PICKED_UP = "picked_up"
    INSPECTING = "inspecting"
    REPAIRING = "repairing"
    REFUNDED = "refunded"
    REPLACEMENT_SHIPPED = "replacement_shipped"
    RETURNED_TO_CUSTOMER = "returned_to_customer"
    DELIVERED = "delivered"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


# What the customer reads on the timeline.
STAGE_LABELS: dict[Stage, str] = {
    Stage.SUBMITTED: "申请已提交",
    Stage.APPROVED: "审核通过",
    Stage.PICKUP_SCHEDULED: "上门取件已预约",
    Stage.PICKED_UP: "快递已揽收",
    Stage.INSPECTING: "质检中",
    Stage.REPAIRING: "维修中",
    Stage.REFUNDED: "退款到账",
    Stage.REPLACEMENT_SHIPPED: "换货已发出",
    Stage.RETURNED_TO_CUSTOMER: "维修完成已寄回",
    Stage.DELIVERED: "已签收",
    Stage.REJECTED: "已驳回",
    Stage.CANCELLED: "已取消",
}

# The happy path of each kind, in order. `rejected` and `cancelled` branch off (below).
PATHS: dict[CaseKind, tuple[Stage, ...]] = {
    CaseKind.RETURN: (
        Stage.SUBMITTED, Stage.APPROVED, Stage.PICKUP_SCHEDULED, Stage.PICKED_UP,
        Stage.INSPECTING, Stage.REFUNDED,
    ),
    CaseKind.EXCHANGE: (
        Stage.SUBMITTED, Stage.APPROVED, Stage.PICKUP_SCHEDULED, Stage.PICKED_UP,
        Stage.INSPECTING, Stage.REPLACEMENT_SHIPPED, Stage.DELIVERED,
    ),
    CaseKind.REFUND: (Stage.SUBMITTED, Stage.APPROVED, Stage.REFUNDED),
    CaseKind.REPAIR: (
        Stage.SUBMITTED, Stage.APPROVED, Stage.PICKUP_SCHEDULED, Stage.PICKED_UP,
        Stage.REPAIRING, Stage.RETURNED_TO_CUSTOMER, Stage.DELIVERED,
    ),
}  # fmt: skip
# Rejected at review, or when inspection finds the goods not returnable; cancelled by the
# customer until the goods have left them.
REJECTABLE = {Stage.SUBMITTED, Stage.INSPECTING}
CANCELLABLE = {Stage.SUBMITTED, Stage.APPROVED, Stage.PICKUP_SCHEDULED}
CLOSED = {Stage.REFUNDED, Stage.DELIVERED, Stage.REJECTED, Stage.CANCELLED}
NEEDS_REASON = {Stage.REJECTED, Stage.CANCELLED}

# How long a case may stay in a stage before it is overdue (the shop's service standards: a
# return request reviewed within 4 h, pickup arranged within 24 h of approval).
TARGETS: dict[Stage, timedelta] = {
    Stage.SUBMITTED: timedelta(hours=4),
    Stage.APPROVED: timedelta(hours=24),
    Stage.PICKUP_SCHEDULED: timedelta(hours=48),
    Stage.PICKED_UP: timedelta(hours=72),
    Stage.INSPECTING: timedelta(hours=24),
    Stage.REPAIRING: timedelta(days=7),
    Stage.REPLACEMENT_SHIPPED: timedelta(hours=72),
    Stage.RETURNED_TO_CUSTOMER: timedelta(hours=72),
}


def next_stages(kind: CaseKind, stage: Stage) -> list[Stage]:
    """The stages a case of `kind` may move to from `stage`, in the order they are usual."""
    if stage in CLOSED:
        return []
    path = PATHS[kind]
    allowed = [path[path.index(stage) + 1]]
    if stage in REJECTABLE:
        allowed.append(Stage.REJECTED)
    if stage in CANCELLABLE:
        allowed.append(Stage.CANCELLED)
    return allowed


IdText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128,
                           pattern=r"^[A-Za-z0-9._:\-]+$")
]  # fmt: skip
FreeText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000, pattern=NOT_BLANK)
]
ID_PATTERN = r"^[A-Za-z0-9._:\-]{1,128}$"


def _kind(value: object) -> object:
    """The event's spelling of a kind taken for the case's (crm.aftersales_codes)."""
    if isinstance(value, str) and value in KIND_OF_EVENT_CASE:
        return CaseKind(case_kind(value))
    return value


class CaseRequest(StrictInput):
    kind: Annotated[
        CaseKind,
        BeforeValidator(_kind),
        WithJsonSchema({"type": "string",
                        "enum": [*(k.value for k in CaseKind), *KIND_OF_EVENT_CASE],
                        "description": "refund (仅退款: money back, goods kept) may be written "
                        "refund_only, as after-sales events write it"}),
    ]  # fmt: skip
    order_id: IdText
    customer_id: IdText
    reason: ReturnReason
    amount: Money = Field(description="what the customer asks back, in the shop's currency")
    sku: IdText | None = None
    product_category: Category | None = None
    note: FreeText | None = Field(
        default=None,
        description="the customer's own words: sealed under their data key, never logged",
    )


class StageAdvance(StrictInput):
    model_config = ConfigDict(
        # A rejection or a cancellation says why (the service refuses one without a reason).
        json_schema_extra={
            "if": {"properties": {"stage": {"enum": ["rejected", "cancelled"]}},
                   "required": ["stage"]},
            "then": {"required": ["reason"],
                     "properties": {"reason": {"type": "string", "minLength": 1,
                                               "maxLength": 1000, "pattern": NOT_BLANK}}},
        }
    )  # fmt: skip

    event_id: IdText = Field(description="the upstream system's event id: a repeat is a no-op")
    stage: Stage
    at: UtcDatetime | None = Field(default=None, description="when it happened upstream")
    reason: FreeText | None = Field(
        default=None, description="required for rejected and cancelled; sealed like the note"
    )


class TimelineEntry(Output):
    stage: Stage
    label: str
    at: datetime
    by: str
    target_at: datetime | None = Field(description="when this stage should be left")
    left_at: datetime | None
    overdue: bool
    reason: str | None = None


class InstantRefund(Output):
    """先行赔付: a small dispute refunded at once, without waiting for the goods."""

    by: str
    why: str
    limit: Decimal
    at: datetime


class AfterSalesCase(Output):
    case_id: str
    kind: CaseKind
    order_id: str
    customer_id: str
    reason: ReturnReason
    amount: Decimal
    sku: str | None
    product_category: str | None
    note: str | None = Field(description="the customer's words (the customer and support only)")
    stage: Stage
    label: str
    closed: bool
    next_stages: list[Stage]
    overdue: bool
    instant_refund: InstantRefund | None
    created_at: datetime
    timeline: list[TimelineEntry]


class CaseList(Output):
    cases: list[AfterSalesCase]
