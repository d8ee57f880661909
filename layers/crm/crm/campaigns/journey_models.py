"""Journeys as data: a trigger, steps that form a graph, exit conditions, a goal and a
re-entry rule (API shapes), and what the store keeps of them and of their instances."""

import re
from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from crm.campaigns.models import MessageChannel
from crm.models import INTEGRAL, Output, Record, StrictInput
from crm.segments import Rule

STEP_ID = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
StepId = Annotated[str, StringConstraints(pattern=STEP_ID.pattern)]
# As dispatch's templates name them (crm.campaigns.templates).
TemplateId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
OfferId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
EventType = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
SegmentRef = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_:\-]{1,63}$")]
MAX_STEPS = 50
MAX_WAIT_S = 365 * 86400
# Events a journey may wait for or trigger on besides the timeline's (profiles publishes them).
EXTRA_EVENT_TYPES = frozenset({"points_changed", "after_sales_closed"})
# Events an exit condition may name besides those: a ticket of the customer was escalated
# (tickets publish TicketEscalated; journeys keep when, per customer).
EXIT_EVENT_TYPES = frozenset({"ticket_escalated"})
# The stages and kinds of after-sales cases (the tickets family's; a test keeps them equal).
AFTER_SALES_STAGES = (
    "submitted", "approved", "pickup_scheduled", "picked_up", "inspecting", "refunded",
    "replacement_shipped", "delivered", "repairing", "returned_to_customer", "rejected",
    "cancelled",
)  # fmt: skip
AfterSalesStage = Literal[
    "submitted", "approved", "pickup_scheduled", "picked_up", "inspecting", "refunded",
    "replacement_shipped", "delivered", "repairing", "returned_to_customer", "rejected",
    "cancelled",
]  # fmt: skip


# ---------------------------------------------------------------------- triggers
class EventTrigger(StrictInput):
    """An event folded into the profile: `order_paid` (optionally the first order only),
    `cart_added`, `after_sales`, `points_changed`, ..."""

    type: Literal["event"]
    event_type: EventType
    first_order_only: bool = Field(
        default=False, description="order_paid only: enter on the customer's first paid order"
    )


class SegmentTrigger(StrictInput):
    """The customer entered or left a segment: a tier (tier:gold), an RFM segment
    (rfm:at_risk) or a rule segment."""

    type: Literal["segment"]
    segment: SegmentRef
    change: Literal["entered", "left"] = "entered"


class DateTrigger(StrictInput):
    """A date attribute of the profile: the month of the customer's birthday (checked daily,
    entered once that month)."""

    type: Literal["date"]
    attribute: Literal["birthday_month"] = "birthday_month"


class InactivityTrigger(StrictInput):
    """No event of a type in the last `days` days (checked daily)."""

    type: Literal["inactivity"]
    event_type: EventType
    days: Annotated[int, Field(ge=1, le=3650), INTEGRAL]


class AfterSalesTrigger(StrictInput):
    """An after-sales case of the customer moved to a stage (the tickets family's
    AfterSalesStageChanged): one of `stages` (any stage when empty), of one of `kinds` (any
    kind when empty). Each case enters once per stage."""

    type: Literal["after_sales"]
    stages: list[AfterSalesStage] = Field(default=[], max_length=12)
    kinds: list[Literal["return", "exchange", "refund", "repair"]] = Field(default=[], max_length=4)


class TicketEscalatedTrigger(StrictInput):
    """A ticket of the customer was escalated (the tickets family's TicketEscalated): for
    service recovery, such as an apology with a coupon. Each ticket enters once."""

    type: Literal["ticket_escalated"]


Trigger = Annotated[
    EventTrigger
    | SegmentTrigger
    | DateTrigger
    | InactivityTrigger
    | AfterSalesTrigger
    | TicketEscalatedTrigger,
    Field(discriminator="type"),
]
# Triggers that answer the customer's own service case: only their journeys may send service
# messages (exempt from marketing consent, caps and quiet hours), so a marketing journey can
# never pass for one.
SERVICE_TRIGGERS = frozenset({"after_sales", "ticket_escalated"})


# ---------------------------------------------------------------------- steps
class _Step(StrictInput):
    id: StepId
    next: StepId | None = Field(default=None, description="the step after this one; none: done")


class WaitStep(_Step):
    """Wait a duration (`seconds`), until a time of day in the customer's zone (`until_time`,
    HH:MM), or until an event (`until_event`) with a timeout (`seconds`) that goes to
    `timeout_next`."""

    type: Literal["wait"]
    seconds: Annotated[int, Field(ge=1, le=MAX_WAIT_S), INTEGRAL] | None = None
    until_time: (
        Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] | None
    ) = None
    until_event: EventType | None = None
    timeout_next: StepId | None = Field(
        default=None, description="until_event: where to go when the timeout passes first"
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if self.until_time is not None and (self.seconds or self.until_event):
            raise ValueError("a wait is a duration, a time of day or an event, not several")
        if self.until_time is None and self.seconds is None:
            raise ValueError("a wait needs seconds, until_time, or until_event with seconds")
        if self.timeout_next is not None and self.until_event is None:
            raise ValueError("timeout_next is for waits until an event")
        return self


class ConditionStep(StrictInput):
    """Branch on the segments' rule grammar: `then` when the profile matches, `otherwise`
    when not."""

    id: StepId
    type: Literal["condition"]
    rule: Rule
    then: StepId | None = None
    otherwise: StepId | None = None


class SplitBranch(StrictInput):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
    weight: Annotated[int, Field(ge=1, le=100), INTEGRAL]
    next: StepId | None = None
    control: bool = Field(default=False, description="a control branch: sends nothing, ends")


class SplitStep(StrictInput):
    """A/B split: each customer falls in one branch, by a hash of journey and customer."""

    id: StepId
    type: Literal["split"]
    branches: list[SplitBranch] = Field(min_length=2, max_length=10)


class SendStep(_Step):
    type: Literal["send"]
    channel: MessageChannel
    template_id: TemplateId
    coupon_offer_id: OfferId | None = None
    purpose: Literal["marketing", "service"] = Field(
        default="marketing",
        description=(
            "service: a transactional message about the customer's own case (an after-sales "
            "stage, an apology for an escalated ticket), exempt from marketing consent, caps "
            "and quiet hours; only in journeys triggered by after_sales or ticket_escalated"
        ),
    )
    on_capped: Literal["drop", "defer", "skip"] = "skip"
    priority: Annotated[int, Field(ge=0, le=100), INTEGRAL] = 0


class UpdateProfileStep(_Step):
    type: Literal["update_profile"]
    add_tag: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    add_points: Annotated[int, Field(ge=1, le=1_000_000), INTEGRAL] | None = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.add_tag is None and self.add_points is None:
            raise ValueError("an update_profile step needs add_tag or add_points")
        return self


Step = Annotated[
    WaitStep | ConditionStep | SplitStep | SendStep | UpdateProfileStep,
    Field(discriminator="type"),
]


# ---------------------------------------------------------------------- exit, goal, re-entry
class Outcome(StrictInput):
    """Met when the customer did `event` since entering, or the profile matches `rule`.
    Exit conditions may also name `ticket_escalated`: a ticket of the customer was escalated
    since entering or in the 7 days before (no marketing to a customer with a live complaint)."""

    event: EventType | None = None
    rule: Rule | None = None

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.event is None) == (self.rule is None):
            raise ValueError("give exactly one of event or rule")
        return self


class Reentry(StrictInput):
    mode: Literal["once", "after"] = "once"
    after_seconds: Annotated[int, Field(ge=60, le=MAX_WAIT_S), INTEGRAL] | None = None

    @model_validator(mode="after")
    def _after_needs_duration(self) -> Self:
        if (self.mode == "after") != (self.after_seconds is not None):
            raise ValueError("mode after needs after_seconds (and only it)")
        return self


class JourneyDefinition(StrictInput):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    description: Annotated[str, StringConstraints(max_length=500)] = ""
    trigger: Trigger
    start: StepId = Field(description="the first step")
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)
    exit: list[Outcome] = Field(default=[], max_length=5)
    goal: Outcome | None = None
    reentry: Reentry = Field(default_factory=Reentry)


# ---------------------------------------------------------------------- stored / answered
JourneyStatus = Literal["draft", "active", "paused"]


class StoredJourney(Output):
    journey_id: str
    version: int
    status: JourneyStatus
    definition: JourneyDefinition
    created_at: datetime
    updated_at: datetime
    created_by: str


class JourneyList(Output):
    journeys: list[StoredJourney]


class JourneyDeleted(Output):
    journey_id: str
    deleted: bool = True


class JourneyExamples(Output):
    examples: list[JourneyDefinition]


class StepCounts(Output):
    """How often a step was taken and how it ended: `done`; a send's dispatch outcome; a
    wait for an event by the `event` or its `timeout`; a split's `control` branch."""

    entered: int = 0
    done: int = 0
    event: int = 0
    timeout: int = 0
    control: int = 0
    sent: int = 0
    deferred: int = 0
    suppressed: int = 0
    suppressed_by: dict[str, int] = Field(
        default={},
        description="`suppressed` by dispatch's reason: no_consent, no_address (the channel "
        "does not reach the customer: no app identity for push, no phone for sms...), "
        "global_control, processing_restricted, unknown_customer; they add up to `suppressed`",
    )
    capped: int = 0
    capped_by: dict[str, int] = Field(
        default={},
        description="`capped` by reason: daily_cap, weekly_cap, rolling_cap, "
        "<reason>_past_max_defer; they add up to `capped`",
    )
    failed: int = 0


class JourneyReport(Output):
    journey_id: str
    entered: int = 0
    completed: int = 0
    exited_goal: int = 0
    exited_exit: int = 0
    steps: dict[str, StepCounts] = Field(default={})
    variants: dict[str, dict[str, int]] = Field(
        default={},
        description="per A/B variant: entered, and its sends' outcomes (sent, capped, ...)",
    )


# ---------------------------------------------------------------------- instances
InstanceState = Literal["active", "waiting", "completed", "goal", "exited"]


class JourneyInstance(Record):
    """One customer's run through one version of a journey (JINST#)."""

    instance_id: str
    journey_id: str
    version: int
    customer_id: str
    seq: int
    state: InstanceState = "active"
    step: str | None = Field(default=None, description="the step to run next, or waiting in")
    pos: int = Field(default=0, description="steps taken: each transition moves it by one")
    variant: str | None = None
    entered_at: datetime
    updated_at: datetime
    wait_timer: str | None = None
    history: list[str] = Field(default=[], description="steps run, in order")


class InstanceList(Output):
    instances: list[JourneyInstance]
