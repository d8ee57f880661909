"""Runs journeys: enters customers on triggers, executes each step of an instance at most once,
waits on the shared timers (kind `journey`) or for an event, and ends instances by goal, exit
or completion.

Exactly once: every transition is one transaction conditioned on the instance's `pos` (the
steps it took), so a redelivered trigger, wake-up or event moves nothing twice. Effects
outside the table are idempotent by their own keys: dispatch by the request's dispatch key
(instance, step, customer, channel), points by a transaction id naming instance, step and pos,
timers by an id naming instance, step and pos. A run that stops half way is picked up by the
next delivery (an `active` instance is simply run again)."""

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Protocol, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aws_lambda_powertools import Logger
from pydantic import ConfigDict, Field, ValidationError

from crm.campaigns.dispatch import Dispatcher
from crm.campaigns.journey_models import (
    EXIT_EVENT_TYPES,
    AfterSalesTrigger,
    ConditionStep,
    DateTrigger,
    EventTrigger,
    InactivityTrigger,
    JourneyDefinition,
    JourneyInstance,
    Outcome,
    SegmentTrigger,
    SendStep,
    SplitStep,
    Step,
    StoredJourney,
    TicketEscalatedTrigger,
    UpdateProfileStep,
    WaitStep,
)
from crm.campaigns.journey_store import (
    JourneyStore,
    Latest,
    instance_id_of,
    parse_instance_id,
)
from crm.campaigns.models import DispatchRequest, reason_counter
from crm.clock import Clock
from crm.errors import NotFound
from crm.events import CustomerProfileUpdated, CustomerSegmentChanged
from crm.models import Record
from crm.profiles import ProfileRecord, ProfileService
from crm.queue import Queue
from crm.segments import Condition, Rule, matches
from crm.sqs_consumer import PoisonMessage
from crm.ticket_events import AfterSalesStageChanged, TicketEscalated
from crm.timers import Timers, WakeUp

logger = Logger(child=True)

TIMER_KIND = "journey"
# Steps one run may take before it stops; validation refuses loops without a wait, so this
# only bounds a very long journey, which the next delivery carries on.
MAX_STEPS_PER_RUN = 60
HISTORY_KEPT = 100
DEFAULT_ZONE = "Asia/Shanghai"  # the shop's zone when the profile names none
ENDED = ("completed", "goal", "exited")
# An exit on `ticket_escalated` also counts an escalation this long before the entry: a
# customer who complained loudly last week is no one to send a win-back coupon today.
ESCALATION_LOOKBACK = timedelta(days=7)


class ProfileActions(Protocol):
    """What an update_profile step does to a profile, through profiles' own use cases (the
    composition root connects them). Both idempotent: a tag is a set, points carry a txn id."""

    def add_tag(self, customer_id: str, tag: str) -> None: ...

    def add_points(self, customer_id: str, points: int, txn_id: str, reason: str) -> None: ...


@dataclass(frozen=True)
class Entered:
    journey_id: str
    customer_id: str
    instance: JourneyInstance | None


def variant_of(journey_id: str, customer_id: str, step: SplitStep) -> int:
    """The branch a customer falls in: a hash of journey and customer, so a redelivery and a
    re-entry land in the same branch."""
    digest = hashlib.sha256(f"{journey_id}#{customer_id}#{step.id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % sum(b.weight for b in step.branches)
    for n, branch in enumerate(step.branches):
        if point < branch.weight:
            return n
        point -= branch.weight
    return len(step.branches) - 1  # pragma: no cover - the weights cover every point


def zone_of(record: ProfileRecord, shop_zone: str = DEFAULT_ZONE) -> ZoneInfo:
    """The customer's zone (the profile's `time_zone`, an IANA name), else the shop's."""
    name = record.attributes.get("time_zone")
    try:
        return ZoneInfo(name) if isinstance(name, str) and name else ZoneInfo(shop_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(shop_zone)


def next_time_of_day(now: datetime, at: str, zone: ZoneInfo) -> datetime:
    hour, minute = (int(p) for p in at.split(":"))
    local = now.astimezone(zone)
    due = datetime.combine(local.date(), time(hour, minute), tzinfo=zone)
    if due <= local:
        due = datetime.combine(local.date() + timedelta(days=1), time(hour, minute), tzinfo=zone)
    return due


class JourneyEngine:
    def __init__(
        self,
        store: JourneyStore,
        profiles: ProfileService,
        dispatcher: Dispatcher,
        timers: Timers,
        actions: ProfileActions,
        clock: Clock,
        shop_zone: Callable[[], str] = lambda: DEFAULT_ZONE,
    ) -> None:
        self._store, self._profiles, self._dispatcher = store, profiles, dispatcher
        self._timers, self._actions, self._clock = timers, actions, clock
        # The contact policy's zone: the customers' without a zone of their own.
        self._shop_zone = shop_zone
        self._definitions: dict[tuple[str, int], JourneyDefinition] = {}
        self._batch_journeys: list[StoredJourney] | None = None

    # ------------------------------------------------------------------ definitions
    def _definition(self, journey_id: str, version: int) -> JourneyDefinition | None:
        key = (journey_id, version)
        if key not in self._definitions:  # versions never change once written
            found = self._store.version(journey_id, version)
            if found is None:
                return None
            self._definitions[key] = found
        return self._definitions[key]

    def active_journeys(self) -> list[StoredJourney]:
        if self._batch_journeys is not None:
            return self._batch_journeys
        return [j for j in self._store.heads() if j.status == "active"]

    @contextmanager
    def journeys_read_once(self) -> Iterator[None]:
        """Within the block (one SQS batch), the journeys are read once, not per message: the
        heads share one partition, which a promotion's events would otherwise read thousands
        of times a second. A journey activated meanwhile counts from the next batch."""
        self._batch_journeys = [j for j in self._store.heads() if j.status == "active"]
        try:
            yield
        finally:
            self._batch_journeys = None

    def _load(self, customer_id: str) -> ProfileRecord | None:
        """The customer's profile; None when there is none any more (erased): a trigger or a
        wake-up for them is done, not a message to retry."""
        try:
            return self._profiles.load(customer_id)
        except NotFound:
            return None

    # ------------------------------------------------------------------ triggers
    def on_bus_event(self, detail_type: str, detail: dict[str, Any]) -> list[Entered]:
        """A bus event as the triggers queue carries it."""
        try:
            if detail_type == CustomerProfileUpdated.detail_type:
                return self.on_profile_updated(CustomerProfileUpdated.model_validate(detail))
            if detail_type == CustomerSegmentChanged.detail_type:
                return self.on_segment_changed(CustomerSegmentChanged.model_validate(detail))
            if detail_type == TicketEscalated.detail_type:
                return self.on_ticket_escalated(TicketEscalated.model_validate(detail))
            if detail_type == AfterSalesStageChanged.detail_type:
                return self.on_after_sales(AfterSalesStageChanged.model_validate(detail))
        except ValueError:
            raise PoisonMessage(f"not a {detail_type} event") from None
        raise PoisonMessage("not an event journeys trigger on: detail-type")

    def on_profile_updated(self, event: CustomerProfileUpdated) -> list[Entered]:
        types = set(event.event_types)
        if not types:
            return []
        self._resume_waits(event.customer_id, types)
        entered: list[Entered] = []
        record: ProfileRecord | None = None
        for journey in self.active_journeys():
            trigger = journey.definition.trigger
            if not isinstance(trigger, EventTrigger) or trigger.event_type not in types:
                continue
            record = record or self._load(event.customer_id)
            if record is None:
                return entered
            if trigger.first_order_only and record.aggregates.orders.order_count != 1:
                continue
            key = f"rev:{event.rev}"
            entered.append(self.enter(journey, record, key))
        return entered

    def on_segment_changed(self, event: CustomerSegmentChanged) -> list[Entered]:
        entered: list[Entered] = []
        record: ProfileRecord | None = None
        for journey in self.active_journeys():
            trigger = journey.definition.trigger
            if not (
                isinstance(trigger, SegmentTrigger)
                and trigger.segment == event.segment
                and trigger.change == event.change
            ):
                continue
            record = record or self._load(event.customer_id)
            if record is None:
                return entered
            when = event.run_id or event.occurred_at.isoformat()
            key = f"seg:{event.segment}:{event.change}:{when}"
            entered.append(self.enter(journey, record, key))
        return entered

    def on_ticket_escalated(self, event: TicketEscalated) -> list[Entered]:
        """Remember the escalation (exit conditions on `ticket_escalated` read it before every
        step), end the customer's live instances of the journeys that exit on it now, so a
        waiting instance sends nothing more, and enter the journeys triggered by it (service
        recovery: an apology), once per ticket."""
        customer_id = event.customer_id
        self._store.mark_escalated(customer_id, event.occurred_at)
        for journey in self.active_journeys():
            if not any(o.event in EXIT_EVENT_TYPES for o in journey.definition.exit):
                continue
            latest = self._store.latest(journey.journey_id, customer_id)
            if latest is None or not latest.inside:
                continue
            instance_id = instance_id_of(journey.journey_id, customer_id, latest.seq)
            instance = self._store.instance(instance_id)
            if instance is not None and instance.state in ("active", "waiting"):
                self._end(instance, "exited")  # None: another delivery moved it first
        entered: list[Entered] = []
        record: ProfileRecord | None = None
        for journey in self.active_journeys():
            if not isinstance(journey.definition.trigger, TicketEscalatedTrigger):
                continue
            record = record or self._load(customer_id)
            if record is None:
                break
            entered.append(self.enter(journey, record, f"ticket:{event.ticket_id}:escalated"))
        return entered

    def on_after_sales(self, event: AfterSalesStageChanged) -> list[Entered]:
        """Enter the customer into the journeys triggered by this case's stage (and kind),
        once per case and stage."""
        entered: list[Entered] = []
        record: ProfileRecord | None = None
        for journey in self.active_journeys():
            trigger = journey.definition.trigger
            if not (
                isinstance(trigger, AfterSalesTrigger)
                and (not trigger.stages or event.stage in trigger.stages)
                and (not trigger.kinds or event.kind in trigger.kinds)
            ):
                continue
            record = record or self._load(event.customer_id)
            if record is None:
                return entered
            entered.append(self.enter(journey, record, f"case:{event.case_id}:{event.stage}"))
        return entered

    def daily(self, records: Sequence[ProfileRecord], journeys: Sequence[StoredJourney]) -> int:
        """Date and inactivity triggers for a page of profiles (the daily scan's shard)."""
        now = self._clock()
        count = 0
        for record in records:
            for journey in journeys:
                key = self._daily_key(journey, record, now)
                if key is None:
                    continue
                try:
                    if self.enter(journey, record, key).instance is not None:
                        count += 1
                except Exception:  # one customer's bad data never stops the others
                    logger.exception("daily entry failed", extra={"journey_id": journey.journey_id})
        return count

    def _daily_key(
        self, journey: StoredJourney, record: ProfileRecord, now: datetime
    ) -> str | None:
        trigger = journey.definition.trigger
        local = now.astimezone(zone_of(record, self._shop_zone()))
        if isinstance(trigger, DateTrigger):
            birthday = record.attributes.get("birthday")
            if not isinstance(birthday, str) or len(birthday) < 7:
                return None
            if int(birthday[5:7]) != local.month:
                return None
            return f"birthday:{local.year}"
        if isinstance(trigger, InactivityTrigger):
            quiet = Rule(all=[Condition(no_event=trigger.event_type, days=trigger.days)])
            if not matches(record, quiet, now):
                return None
            last = record.aggregates.behaviour.last_event_at.get(trigger.event_type)
            # One entry per quiet spell: the spell is named by the last event before it.
            return f"quiet:{last.isoformat() if last else 'never'}"
        return None

    # ------------------------------------------------------------------ entry
    def _may_enter(self, journey: StoredJourney, latest: Latest | None, key: str) -> bool:
        if latest is None:
            return True
        if latest.inside or latest.trigger_key == key:
            return False
        reentry = journey.definition.reentry
        if reentry.mode == "once" or reentry.after_seconds is None:
            return False
        ended = latest.ended_at or self._clock()
        return self._clock() >= ended + timedelta(seconds=reentry.after_seconds)

    def enter(self, journey: StoredJourney, record: ProfileRecord, trigger_key: str) -> Entered:
        """Enter the customer if the journey's re-entry rule lets them, then run the
        instance's first steps; an entry already made for this trigger enters nothing."""
        customer_id = record.customer_id
        latest = self._store.latest(journey.journey_id, customer_id)
        if not self._may_enter(journey, latest, trigger_key):
            return Entered(journey.journey_id, customer_id, None)
        now = self._clock()
        seq = (latest.seq if latest else 0) + 1
        instance = JourneyInstance(
            instance_id=f"{journey.journey_id}#{customer_id}#{seq}", journey_id=journey.journey_id,
            version=journey.version, customer_id=customer_id, seq=seq,
            step=journey.definition.start, entered_at=now, updated_at=now,
        )  # fmt: skip
        self._definitions[(journey.journey_id, journey.version)] = journey.definition
        if not self._store.enter(instance, latest, trigger_key, {"entered": 1}):
            return Entered(journey.journey_id, customer_id, None)
        return Entered(journey.journey_id, customer_id, self.run(instance, record))

    # ------------------------------------------------------------------ running
    def _met(self, outcome: Outcome, instance: JourneyInstance, record: ProfileRecord) -> bool:
        if outcome.rule is not None:
            return matches(record, outcome.rule, self._clock())
        if outcome.event in EXIT_EVENT_TYPES:  # ticket_escalated: kept by journeys themselves
            escalated = self._store.escalated_at(instance.customer_id)
            return escalated is not None and escalated >= instance.entered_at - ESCALATION_LOOKBACK
        last = record.aggregates.behaviour.last_event_at.get(outcome.event or "")
        return last is not None and last >= instance.entered_at

    def _ending(
        self, definition: JourneyDefinition, instance: JourneyInstance, record: ProfileRecord
    ) -> str | None:
        if definition.goal is not None and self._met(definition.goal, instance, record):
            return "goal"
        if any(self._met(o, instance, record) for o in definition.exit):
            return "exited"
        return None

    def run(
        self, instance: JourneyInstance, record: ProfileRecord | None = None
    ) -> JourneyInstance:
        """Take the instance's steps until it waits or ends; the goal and the exit conditions
        are checked before every step."""
        definition = self._definition(instance.journey_id, instance.version)
        if definition is None:
            logger.warning("journey version gone", extra={"journey_id": instance.journey_id})
            return instance
        steps = {s.id: s for s in definition.steps}
        record = record or self._load(instance.customer_id)
        if record is None:  # the customer is gone: the journey ends for them
            return self._end(instance, "exited") or instance
        for _ in range(MAX_STEPS_PER_RUN):
            if instance.state != "active":
                return instance
            ending = self._ending(definition, instance, record)
            if ending is not None or instance.step is None or instance.step not in steps:
                moved = self._end(instance, ending or "completed")
            else:
                moved = self._execute(instance, steps[instance.step], record)
            if moved is None:  # another delivery moved it: that one carries on
                return self._store.instance(instance.instance_id) or instance
            instance = moved
        return instance

    def _moved(
        self, instance: JourneyInstance, next_step: str | None, ran: str | None, **update: Any
    ) -> JourneyInstance:
        history = [*instance.history, ran] if ran else list(instance.history)
        return instance.model_copy(
            update={
                "step": next_step, "pos": instance.pos + 1, "updated_at": self._clock(),
                "history": history[-HISTORY_KEPT:], **update,
            }
        )  # fmt: skip

    def _end(self, instance: JourneyInstance, how: str) -> JourneyInstance | None:
        after = self._moved(instance, None, None, state=how)
        return after if self._store.advance(instance, after, {how: 1}) else None

    def _step_done(
        self, instance: JourneyInstance, step: Step, next_step: str | None, outcome: str = "done",
        why: str | None = None, **update: Any,
    ) -> JourneyInstance | None:  # fmt: skip
        after = self._moved(instance, next_step, step.id, **update)
        counts = {f"step#{step.id}#entered": 1, f"step#{step.id}#{outcome}": 1}
        if why is not None:  # a send's outcome by reason ('suppressed.no_address')
            counts[f"step#{step.id}#{why}"] = 1
        # Per A/B variant: how many fell in it, and what its sends came to.
        if after.variant is not None and isinstance(step, SplitStep):
            counts[f"variant#{after.variant}#entered"] = 1
        elif after.variant is not None and isinstance(step, SendStep):
            counts[f"variant#{after.variant}#{outcome}"] = 1
        return after if self._store.advance(instance, after, counts) else None

    def _execute(
        self, instance: JourneyInstance, step: Step, record: ProfileRecord
    ) -> JourneyInstance | None:
        if isinstance(step, WaitStep):
            return self._wait(instance, step, record)
        if isinstance(step, ConditionStep):
            target = step.then if matches(record, step.rule, self._clock()) else step.otherwise
            return self._step_done(instance, step, target)
        if isinstance(step, SplitStep):
            branch = step.branches[variant_of(instance.journey_id, instance.customer_id, step)]
            if branch.control:
                return self._step_done(instance, step, None, "control", variant=branch.name)
            return self._step_done(instance, step, branch.next, "done", variant=branch.name)
        if isinstance(step, SendStep):
            return self._send(instance, step)
        return self._update_profile(instance, step)

    def _send(self, instance: JourneyInstance, step: SendStep) -> JourneyInstance | None:
        outcome = self._dispatcher.dispatch(
            DispatchRequest(
                source="journey", source_id=instance.instance_id, step=step.id,
                campaign_id=instance.journey_id, variant=instance.variant,
                customer_id=instance.customer_id, channel=step.channel,
                template_id=step.template_id, coupon_offer_id=step.coupon_offer_id,
                priority=step.priority, on_capped=step.on_capped, requested_at=self._clock(),
                transactional=step.purpose == "service",
            )
        )  # fmt: skip
        # Deferred: dispatch holds the message and sends it itself later; the journey goes on.
        # Capped and the step said drop: nothing more happens for this customer here.
        # The report breaks suppressions and caps down by dispatch's reason ('no_address': the
        # channel does not reach the customer), beside the status's own count.
        why = reason_counter(outcome.status, outcome.reason)
        if outcome.status == "capped" and step.on_capped == "drop":
            after = self._moved(instance, None, step.id, state="exited")
            counts = {f"step#{step.id}#entered": 1, f"step#{step.id}#capped": 1, "exited": 1}
            if why is not None:
                counts[f"step#{step.id}#{why}"] = 1
            return after if self._store.advance(instance, after, counts) else None
        return self._step_done(instance, step, step.next, outcome.status, why=why)

    def _update_profile(
        self, instance: JourneyInstance, step: UpdateProfileStep
    ) -> JourneyInstance | None:
        if step.add_tag is not None:
            self._actions.add_tag(instance.customer_id, step.add_tag)
        if step.add_points is not None:
            txn = f"journey:{instance.journey_id}:{instance.customer_id}:{instance.seq}:{step.id}:{instance.pos}"  # noqa: E501
            self._actions.add_points(instance.customer_id, step.add_points, txn, "journey")
        return self._step_done(instance, step, step.next)

    def _wait(
        self, instance: JourneyInstance, step: WaitStep, record: ProfileRecord
    ) -> JourneyInstance | None:
        now = self._clock()
        if step.until_time is not None:
            due = next_time_of_day(now, step.until_time, zone_of(record, self._shop_zone()))
        else:
            due = now + timedelta(seconds=step.seconds or 0)
        timer_id = f"{instance.instance_id}#{step.id}#{instance.pos}"
        # Set first (idempotent by id): a crash before the transition leaves a timer whose
        # wake-up finds the instance not waiting and only runs it on.
        self._timers.set(
            TIMER_KIND, timer_id, due, {"instance_id": instance.instance_id,
                                        "pos": str(instance.pos + 1)},
            instance.customer_id,  # privacy: an erasure finds it by index
        )  # fmt: skip
        after = instance.model_copy(
            update={"state": "waiting", "pos": instance.pos + 1, "updated_at": now,
                    "wait_timer": timer_id}
        )  # fmt: skip
        counts = {f"step#{step.id}#entered": 1}
        moved = self._store.advance(instance, after, counts, wait_for=step.until_event)
        return after if moved else None

    # ------------------------------------------------------------------ waking
    def _leave_wait(
        self, instance: JourneyInstance, target: str | None, outcome: str,
        extra: Sequence[dict[str, Any]] = (),
    ) -> JourneyInstance | None:  # fmt: skip
        definition = self._definition(instance.journey_id, instance.version)
        step = {s.id: s for s in definition.steps}.get(instance.step or "") if definition else None
        after = self._moved(instance, target, instance.step, state="active", wait_timer=None)
        counts = {f"step#{instance.step}#{outcome}": 1}
        waited_for_event = isinstance(step, WaitStep) and step.until_event is not None
        ok = self._store.advance(instance, after, counts, extra=extra, clear_wait=waited_for_event)
        return after if ok else None

    def wake(self, wake: WakeUp) -> JourneyInstance | None:
        """A wait's timer fired: move on (or down the timeout branch), once."""
        instance_id = wake.payload.get("instance_id", "")
        try:
            parse_instance_id(instance_id)
            pos = int(wake.payload.get("pos", ""))
        except ValueError:
            raise PoisonMessage("not a journey wake-up: payload") from None
        instance = self._store.instance(instance_id)
        if instance is None:
            self._timers.claim(wake)
            return None
        if instance.state == "waiting" and instance.pos == pos:
            definition = self._definition(instance.journey_id, instance.version)
            step = (
                next((s for s in definition.steps if s.id == instance.step), None)
                if definition
                else None
            )
            if not isinstance(step, WaitStep):
                self._timers.claim(wake)
                return instance
            target = step.timeout_next if step.until_event is not None else step.next
            outcome = "timeout" if step.until_event is not None else "done"
            claim = self._timers.claim_operation(wake)
            moved = self._leave_wait(instance, target, outcome, [claim])
            instance = moved or self._store.instance(instance_id) or instance
        if instance.state == "active":  # moved on but not run yet (a crash, or just now)
            return self.run(instance)
        return instance

    def _resume_waits(self, customer_id: str, types: set[str]) -> None:
        for waiting in self._store.waiting(customer_id):
            if waiting.event_type not in types:
                continue
            instance = self._store.instance(waiting.instance_id)
            if instance is None or instance.state != "waiting" or instance.pos != waiting.pos:
                continue
            definition = self._definition(instance.journey_id, instance.version)
            step = (
                next((s for s in definition.steps if s.id == instance.step), None)
                if definition
                else None
            )
            if not isinstance(step, WaitStep):
                continue
            moved = self._leave_wait(instance, step.next, "event")
            if moved is not None:
                if instance.wait_timer:
                    self._timers.cancel(TIMER_KIND, instance.wait_timer)
                self.run(moved)


# ---------------------------------------------------------------------- the daily scan
DAILY_SHARDS = 16  # parallel-scan segments of the customers, one worker each
DAILY_PAGE = 200
# A shard worker hands the rest of its shard on (a message with the scan's position) when
# less than this is left of its time, rather than being cut off mid-page.
DAILY_RESERVE_MS = 30_000


class DailyTask(Record):
    """One shard of the daily scan for date and inactivity triggers: ids and a scan
    position, never customer data."""

    model_config = ConfigDict(extra="forbid")

    day: str
    shard: int = Field(ge=0)
    total: int = Field(ge=1, le=1000)
    start_key: dict[str, Any] | None = None

    @classmethod
    def parse(cls, body: str) -> Self:
        try:
            return cls.model_validate_json(body)
        except ValidationError as exc:
            fields = sorted({".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors()})
            raise PoisonMessage(f"not a daily journey task: {', '.join(fields)}") from None


@dataclass(frozen=True)
class DailyScanned:
    shard: int
    read: int
    entered: int
    handed_on: bool


def daily_journeys(journeys: Sequence[StoredJourney]) -> list[StoredJourney]:
    daily = DateTrigger | InactivityTrigger
    return [j for j in journeys if j.status == "active" and isinstance(j.definition.trigger, daily)]


class DailyTriggers:
    """Fans the daily scan out like a segment run: the schedule plans one task per shard, each
    worker reads its shard of the profiles a page at a time and enters whoever a date or
    inactivity trigger names. Entries are idempotent (trigger keys, re-entry rules), so a
    task run twice or late enters nobody twice."""

    def __init__(
        self, engine: JourneyEngine, profiles: ProfileService, queue: Queue, clock: Clock
    ) -> None:
        self._engine, self._profiles, self._queue, self._clock = engine, profiles, queue, clock

    def plan(self) -> int:
        if not daily_journeys(self._engine.active_journeys()):
            return 0
        day = self._clock().date().isoformat()
        tasks = [DailyTask(day=day, shard=n, total=DAILY_SHARDS) for n in range(DAILY_SHARDS)]
        self._queue.send([t.model_dump_json(exclude_none=True) for t in tasks])
        return len(tasks)

    def scan(self, body: str, remaining_ms: Callable[[], int]) -> DailyScanned:
        task = DailyTask.parse(body)
        journeys = daily_journeys(self._engine.active_journeys())
        read = entered = 0
        start = task.start_key
        while journeys:
            records, start = self._profiles.store.scan_profiles(
                task.shard, task.total, start, DAILY_PAGE
            )
            read += len(records)
            entered += self._engine.daily(records, journeys)
            if start is None:
                break
            if remaining_ms() < DAILY_RESERVE_MS:
                rest = task.model_copy(update={"start_key": start})
                self._queue.send([rest.model_dump_json(exclude_none=True)])
                return DailyScanned(task.shard, read, entered, handed_on=True)
        return DailyScanned(task.shard, read, entered, handed_on=False)
