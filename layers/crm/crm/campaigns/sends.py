"""Segment sends: one message to every member of a segment, fanned out page by page.

Start (now, or when its `send` timer fires) queues a *list* task: it reads the segment's
members PAGE_SIZE at a time (up to LIST_PAGES_PER_TASK pages a task, then it queues its own
continuation), stores each page (the members, a cursor, a state) and queues a *page* task for
it. Page tasks run in parallel on the send worker (SendShardsQueue's MaximumConcurrency), so a
million recipients are 2,000 pages on up to 100 workers, never one Lambda.

A page sends CHUNK recipients at a time through dispatch, then moves the page's cursor and adds
what the chunk counted in one transaction conditioned on the cursor: a page delivered again
resumes after the last chunk it recorded, and the chunk it was in the middle of is dispatched
again under the same dispatch keys, which dispatch answers with the first outcome. Between
chunks the send's status is read again: a paused send parks its pages (resume queues them
again), a cancelled one stops.

Variant and holdout come from hashes of the send and customer ids: the same customer lands in
the same arm however often a page runs. Holdout members (and members dispatch keeps back as the
global control group) get no message; an exposure item records them for the uplift figures.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from crm.auth import Caller, Permission
from crm.campaigns.addresses import shown_address
from crm.campaigns.coupons import Coupons
from crm.campaigns.dispatch import Dispatcher
from crm.campaigns.facts import exposure_facts
from crm.campaigns.models import DispatchOutcome, DispatchRequest, MessageChannel
from crm.campaigns.policy import CapState, ContactPolicy, check_caps
from crm.campaigns.records import owned_by
from crm.campaigns.send_models import (
    Preview,
    Send,
    SendAction,
    SendInput,
    SendList,
    SendProgress,
    SendTask,
    Variant,
)
from crm.campaigns.send_store import SendStore
from crm.campaigns.templates import StoredTemplate, send_problem
from crm.clock import Clock, IdFactory
from crm.errors import Conflict, CrmError, FieldProblem, InvalidInput, NotFound, Unavailable
from crm.lake import FactLog
from crm.queue import Queue
from crm.segments import SegmentCatalog
from crm.sqs_consumer import PoisonMessage
from crm.timers import Timers, WakeUp

logger = Logger(child=True)

SEND_TIMER = "send"
PAGE_SIZE = 500  # recipients a page task sends: ~25 s at 20 ms a dispatch
LIST_PAGES_PER_TASK = 20
CHUNK = 25  # recipients between cursor moves (with their counters and exposures, <= 100 items)
TIME_MARGIN_MS = 20_000  # a page stops this long before the worker's timeout and queues itself
EXACT_PREVIEW = 1_000  # segments up to this size are previewed member by member
PREVIEW_SAMPLE = 400
SEND_ID = re.compile(r"[0-9A-Za-z_\-]{1,64}")
# How long after a touch an order counts for it, per channel, unless the send says.
ATTRIBUTION_HOURS = {
    MessageChannel.EMAIL: 72,
    MessageChannel.SMS: 24,
    MessageChannel.PUSH: 24,
    MessageChannel.WECHAT: 48,
    MessageChannel.WEBHOOK: 72,
}
EXPOSURE_KEEP = timedelta(days=60)  # exposures outlive any attribution window, then expire


class AudienceScreen(Protocol):
    """Who a marketing message could reach, as dispatch would decide it, without sending."""

    def in_global_control(self, customer_id: str) -> bool: ...

    def excluded(self, customer_id: str, channel: MessageChannel, at: datetime) -> str | None:
        """Why a message would not go out ('no_consent', 'global_control', 'no_address',
        'capped'), or None."""
        ...


def _unit(*parts: str) -> float:
    digest = hashlib.sha256("#".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(
    send_id: str, customer_id: str, holdout_percent: int, variants: Sequence[Variant]
) -> tuple[str, str]:
    """(arm, variant): 'holdout' for the held-out share, else 'treatment' and a variant chosen
    by weight. Two independent hashes, so the split among variants does not depend on the
    holdout share."""
    if _unit("holdout", send_id, customer_id) * 100 < holdout_percent:
        return "holdout", "holdout"
    point = _unit("variant", send_id, customer_id) * sum(v.weight for v in variants)
    for variant in variants:
        point -= variant.weight
        if point < 0:
            return "treatment", variant.name
    return "treatment", variants[-1].name


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float, float]:
    if n == 0:
        return 0.0, 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # At 0 or n successes a bound is exactly 0 or 1, which the subtraction misses by ~1e-18.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return p, low, high


def send_view(item: dict[str, Any]) -> Send:
    values = {k: v for k, v in item.items() if k in Send.model_fields}
    values["progress"] = SendProgress(
        pages_listed=int(item.get("pages_listed", 0)),
        pages_done=int(item.get("pages_done", 0)),
        listing_done=bool(item.get("listing_done", False)),
        recipients=int(item.get("recipients", 0)),
    )
    return Send.model_validate(values)


class Sends:
    def __init__(
        self,
        store: SendStore,
        segments: SegmentCatalog,
        coupons: Coupons,
        dispatcher: Callable[[], Dispatcher],
        screen: Callable[[], AudienceScreen],
        timers: Callable[[], Timers],
        queue: Callable[[], Queue],
        clock: Clock,
        ids: IdFactory,
        template_of: Callable[[str], StoredTemplate | None],
        facts: FactLog | None = None,  # analytics: holdout and control exposures to the lake
        concurrency: Callable[[MessageChannel], int] = lambda _: 1,
    ) -> None:
        self._facts = facts
        # How many of a chunk's recipients are dispatched at once (the contact policy's
        # `max_concurrency` of the send's channel); dispatch's token bucket still holds the
        # worker to the channel's `rate_per_s`, whatever the number of threads.
        self._concurrency = concurrency
        self._template_of = template_of
        self._store = store
        self._segments = segments
        self._coupons = coupons
        self._dispatcher = dispatcher
        self._screen = screen
        self._timers = timers
        self._queue = queue
        self._clock = clock
        self._ids = ids

    # ------------------------------------------------------------ definitions
    def create(self, caller: Caller, body: SendInput) -> Send:
        caller.require(Permission.EDIT_CAMPAIGNS)
        try:
            self._segments.segment(caller, body.segment)
        except NotFound:
            raise InvalidInput(
                f"no segment {body.segment}", [FieldProblem("segment", "unknown")]
            ) from None
        named = [("template_id", body.template_id)] + [
            (f"variants.{n}.template_id", v.template_id)
            for n, v in enumerate(body.variants) if v.template_id
        ]  # fmt: skip
        coupon = body.coupon_offer_id is not None
        problems = [
            FieldProblem(field, why)
            for field, template_id in named
            if (why := send_problem(template_id, self._template_of(template_id), body.channel,
                                    coupon)) is not None
        ]  # fmt: skip
        if problems:
            raise InvalidInput(problems[0].message, problems)
        if body.coupon_offer_id is not None:
            try:
                self._coupons.offer(body.coupon_offer_id)
            except NotFound:
                raise InvalidInput(
                    f"no coupon offer {body.coupon_offer_id}",
                    [FieldProblem("coupon_offer_id", "unknown")],
                ) from None
        now = self._clock()
        variants = [
            Variant(name=v.name, weight=v.weight, template_id=v.template_id or body.template_id)
            for v in body.variants
        ] or [Variant(name="A", weight=100, template_id=body.template_id)]
        send = Send(
            send_id=now.strftime("%Y%m%dT%H%M%SZ") + "-" + self._ids()[:8],
            name=body.name,
            segment=body.segment,
            channel=body.channel,
            template_id=body.template_id,
            coupon_offer_id=body.coupon_offer_id,
            variants=variants,
            holdout_percent=body.holdout_percent,
            send_at=body.send_at,
            attribution_hours=body.attribution_hours or ATTRIBUTION_HOURS[body.channel],
            margin_rate=body.margin_rate,
            status="draft",
            created_at=now,
            created_by=caller.subject,
        )
        self._store.create_send(send.model_dump(mode="json", exclude={"progress"}))
        return send

    def _load(self, send_id: str) -> Send:
        item = self._store.send(send_id) if SEND_ID.fullmatch(send_id) else None
        if item is None:
            raise NotFound(f"no send {send_id}")
        return send_view(item)

    def get(self, caller: Caller, send_id: str) -> Send:
        caller.require(Permission.READ_CAMPAIGNS)
        return self._load(send_id)

    def list_sends(self, caller: Caller, limit: int) -> SendList:
        caller.require(Permission.READ_CAMPAIGNS)
        return SendList(sends=[send_view(i) for i in self._store.sends(limit)])

    # ------------------------------------------------------------ start, pause, resume, cancel
    def act(self, caller: Caller, send_id: str, body: SendAction) -> Send:
        caller.require(Permission.EDIT_CAMPAIGNS)
        send = self._load(send_id)
        now = self._clock()
        if body.action == "start":
            if send.status == "draft" and send.send_at is not None and send.send_at > now:
                moved = self._store.set_status(send_id, "scheduled", ["draft"], {})
                if moved is None:
                    raise Conflict(f"send {send_id} is {send.status}: only a draft starts")
                self._timers().set(SEND_TIMER, send_id, send.send_at, {"send_id": send_id})
                return send_view(moved)
            # A scheduled send started again starts now; its timer then claims nothing.
            started = self._begin(send_id, ["draft", "scheduled"])
            self._timers().cancel(SEND_TIMER, send_id)
            return started
        if body.action == "pause":
            moved = self._store.set_status(send_id, "paused", ["running"], {})
            if moved is None:
                raise Conflict(f"send {send_id} is {send.status}: only a running send pauses")
            return send_view(moved)
        if body.action == "resume":
            moved = self._store.set_status(send_id, "running", ["paused"], {})
            if moved is None:
                raise Conflict(f"send {send_id} is {send.status}: only a paused send resumes")
            parked = self._store.parked_pages(send_id)
            for page in parked:
                self._store.set_page_state(send_id, page, "listed", ["parked"])
            self._queue_tasks([SendTask(send_id=send_id, kind="page", page=p) for p in parked])
            return send_view(moved)
        moved = self._store.set_status(
            send_id,
            "cancelled",
            ["draft", "scheduled", "running", "paused"],
            {"finished_at": now.isoformat()},
        )
        if moved is None:
            raise Conflict(f"send {send_id} is {send.status} already")
        self._timers().cancel(SEND_TIMER, send_id)
        # A paused send's parked pages have no task left to find the cancellation.
        for page in self._store.parked_pages(send_id):
            self._store.set_page_state(send_id, page, "cancelled", ["parked"])
        return send_view(moved)

    def _begin(self, send_id: str, allowed_from: list[str]) -> Send:
        now = self._clock()
        moved = self._store.set_status(
            send_id, "running", allowed_from, {"started_at": now.isoformat()}
        )
        if moved is None:
            current = self._load(send_id)
            raise Conflict(f"send {send_id} is {current.status}: it cannot start")
        self._queue_tasks([SendTask(send_id=send_id, kind="list", page=0)])
        return send_view(moved)

    def wake(self, wake: WakeUp) -> bool:
        """A scheduled send's timer fired: start it unless it was cancelled meanwhile."""
        if not self._timers().claim(wake):
            return False
        try:
            self._begin(wake.payload.get("send_id", wake.timer_id), ["scheduled"])
        except (Conflict, NotFound):
            return False  # cancelled (or started by hand) since it was scheduled
        return True

    def _queue_tasks(self, tasks: Sequence[SendTask]) -> None:
        if tasks:
            self._queue().send([t.model_dump_json(exclude_none=True) for t in tasks])

    # ------------------------------------------------------------ the worker
    def handle(self, body: str, remaining_ms: Callable[[], int]) -> str:
        """One message of the send queues: a list task, a page task, or a `send` wake-up."""
        try:
            data = json.loads(body)
        except ValueError:
            raise PoisonMessage("not JSON") from None
        if isinstance(data, dict) and "generation" in data:
            return "started" if self.wake(WakeUp.parse(body)) else "stale wake-up"
        try:
            task = SendTask.model_validate(data)
        except ValueError:
            raise PoisonMessage("not a send task: send_id, kind, page") from None
        if task.kind == "list":
            return self.list_members(task, remaining_ms)
        return self.send_page(task, remaining_ms)

    def list_members(self, task: SendTask, remaining_ms: Callable[[], int]) -> str:
        item = self._store.send(task.send_id)
        if item is None:
            raise PoisonMessage("send_id names no send")
        send = send_view(item)
        if send.status in {"cancelled", "complete"}:
            return f"listing skipped: {send.status}"
        page, token = task.page, task.token
        members, queued = 0, []
        done = False
        for _ in range(LIST_PAGES_PER_TASK):
            ids, token = self._segments.member_page(send.segment, PAGE_SIZE, token)
            if ids:
                if self._store.put_page(send.send_id, page, ids):
                    members += len(ids)
                queued.append(SendTask(send_id=send.send_id, kind="page", page=page))
                page += 1
            if token is None:
                done = True
                break
            if remaining_ms() < TIME_MARGIN_MS:
                break
        self._queue_tasks(queued)
        if not done:
            self._queue_tasks([SendTask(send_id=send.send_id, kind="list", page=page, token=token)])
        self._store.note_listed(send.send_id, page, members, done)
        if done:
            self._maybe_complete(send.send_id)
        return f"listed {len(queued)} pages"

    def send_page(self, task: SendTask, remaining_ms: Callable[[], int]) -> str:
        send_id, number = task.send_id, task.page
        page = self._store.page(send_id, number)
        if page is None:
            raise PoisonMessage("page names no listed page")
        if page["state"] in {"done", "cancelled"}:
            return f"page {page['state']} already"
        members: list[str] = list(page["members"])
        done = int(page["done"])
        send = self._load(send_id)
        while True:
            stop = self._should_stop(send, number)
            if stop:
                return stop
            if done >= len(members):
                break
            if remaining_ms() < TIME_MARGIN_MS:
                self._queue_tasks([task])  # the cursor keeps its place for the next attempt
                return f"page {number} continues ({done} of {len(members)})"
            chunk = members[done : done + CHUNK]
            counts, exposures = self._send_chunk(send, chunk)
            if not self._store.advance_page(
                send_id, number, done, done + len(chunk), counts, exposures
            ):
                return f"page {number} is being sent by another attempt"
            if self._facts is not None:  # analytics: best effort, never stops the page
                self._facts.write("campaign_facts", exposure_facts(exposures))
            done += len(chunk)
            send = self._load(send_id)
        if self._store.set_page_state(send_id, number, "done", ["listed"]):
            self._store.finish_page(send_id)
            self._maybe_complete(send_id)
        return f"page {number} sent ({len(members)} members)"

    def _should_stop(self, send: Send, number: int) -> str | None:
        if send.status == "cancelled":
            self._store.set_page_state(send.send_id, number, "cancelled", ["listed", "parked"])
            return f"page {number}: send cancelled"
        if send.status == "paused":
            self._store.set_page_state(send.send_id, number, "parked", ["listed"])
            # Resumed between the read and the park: resume may have looked before the park.
            if self._load(send.send_id).status == "running":
                self._store.set_page_state(send.send_id, number, "listed", ["parked"])
                self._queue_tasks([SendTask(send_id=send.send_id, kind="page", page=number)])
            return f"page {number}: send paused"
        return None

    def _send_chunk(
        self, send: Send, chunk: Sequence[str]
    ) -> tuple[dict[tuple[str, str], dict[str, int]], list[dict[str, Any]]]:
        now = self._clock()
        counts: dict[tuple[str, str], dict[str, int]] = {}
        exposures: list[dict[str, Any]] = []
        templates = {v.name: v.template_id for v in send.variants}
        screen = self._screen()

        def count(arm: str, variant: str, name: str) -> None:
            into = counts.setdefault((arm, variant), {})
            into[name] = into.get(name, 0) + 1

        def expose(customer_id: str, arm: str, variant: str) -> None:
            expires = now + EXPOSURE_KEEP
            exposures.append(
                {
                    "PK": f"EXPO#{customer_id}",
                    "SK": send.send_id,
                    **owned_by(customer_id),
                    "arm": arm,
                    "variant": variant,
                    "at": now.isoformat(),
                    "hours": send.attribution_hours,
                    "expires_at": int(expires.timestamp()),
                }
            )

        requests: dict[str, DispatchRequest] = {}
        arms: dict[str, tuple[str, str]] = {}
        for customer_id in chunk:
            arm, variant = assign(send.send_id, customer_id, send.holdout_percent, send.variants)
            arms[customer_id] = (arm, variant)
            if arm != "holdout":
                requests[customer_id] = DispatchRequest(
                    source="send",
                    source_id=send.send_id,
                    step=variant,
                    campaign_id=send.send_id,
                    variant=variant,
                    customer_id=customer_id,
                    channel=send.channel,
                    template_id=templates[variant],
                    coupon_offer_id=send.coupon_offer_id,
                    requested_at=now,
                )
        outcomes = self._dispatch_all(send, list(requests.values()))
        for customer_id in chunk:  # counted in the chunk's order, whatever finished first
            arm, variant = arms[customer_id]
            if arm == "holdout":
                if screen.in_global_control(customer_id):
                    count("control", "holdout", "n")
                    expose(customer_id, "control", variant)
                else:
                    count("holdout", "holdout", "n")
                    expose(customer_id, "holdout", variant)
                continue
            outcome = outcomes[customer_id]
            if isinstance(outcome, CrmError):  # one customer's bad data never stops the others
                logger.warning(
                    "dispatch refused",
                    extra={"send_id": send.send_id, "error": type(outcome).__name__},
                )
                count("treatment", variant, "n")
                count("treatment", variant, "failed")
                continue
            if outcome.status == "suppressed" and outcome.reason == "global_control":
                count("control", variant, "n")
                expose(customer_id, "control", variant)
                continue
            count("treatment", variant, "n")
            count("treatment", variant, outcome.status)
        return counts, exposures

    def _dispatch_all(
        self, send: Send, requests: Sequence[DispatchRequest]
    ) -> dict[str, DispatchOutcome | CrmError]:
        """Dispatch a chunk's messages, up to the channel's `max_concurrency` at once (each is
        I/O: a read, a query, two transactions, the provider). Every message is dispatched
        before an error is raised: `Unavailable` (busy, or another attempt holds a message) or
        anything unexpected makes the page try again, and the messages that went out answer
        their first outcome then; a CrmError is that customer's alone."""
        dispatcher = self._dispatcher()

        def one(request: DispatchRequest) -> DispatchOutcome | CrmError:
            try:
                return dispatcher.dispatch(request)
            except Unavailable:
                raise
            except CrmError as exc:
                return exc

        workers = max(1, min(len(requests), self._concurrency(send.channel)))
        if workers == 1:
            return {r.customer_id: one(r) for r in requests}
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dispatch") as pool:
            futures = {r.customer_id: pool.submit(one, r) for r in requests}
            wait(futures.values())
        failed = [e for f in futures.values() if (e := f.exception()) is not None]
        if failed:  # "try again later" first: the page is retried either way
            raise next((e for e in failed if isinstance(e, Unavailable)), failed[0])
        return {customer_id: f.result() for customer_id, f in futures.items()}

    def _maybe_complete(self, send_id: str) -> None:
        item = self._store.send(send_id)
        if item is None or not item.get("listing_done"):
            return
        if int(item.get("pages_done", 0)) >= int(item.get("pages_listed", 0)):
            self._store.set_status(
                send_id,
                "complete",
                ["running", "paused"],
                {"finished_at": self._clock().isoformat()},
            )

    # ------------------------------------------------------------ preview
    def preview(self, caller: Caller, send_id: str) -> Preview:
        caller.require(Permission.READ_CAMPAIGNS)
        send = self._load(send_id)
        now = self._clock()
        members, token = self._segments.member_page(send.segment, EXACT_PREVIEW + 1, None)
        exact = len(members) <= EXACT_PREVIEW and token is None
        size = len(members) if exact else self._segment_size(caller, send.segment, len(members))
        sample = members if exact else members[:PREVIEW_SAMPLE]
        screen = self._screen()
        tally = {"audience": 0, "holdout": 0, "no_consent": 0, "no_address": 0,
                 "global_control": 0, "capped": 0}  # fmt: skip
        for customer_id in sample:
            # Counted as the send will report them: the holdout's members in the global control
            # group are control; the others, as dispatch decides (consent before the control
            # group: a member without consent is suppressed for it, in or out of the group).
            arm, _ = assign(send.send_id, customer_id, send.holdout_percent, send.variants)
            if arm == "holdout":
                control = screen.in_global_control(customer_id)
                tally["global_control" if control else "holdout"] += 1
            else:
                reason = screen.excluded(customer_id, send.channel, now)
                tally[reason if reason in tally else "audience"] += 1
        if exact:
            return Preview(
                send_id=send_id,
                segment_size=size,
                method="exact",
                sample_size=len(sample),
                audience_low=tally["audience"],
                audience_high=tally["audience"],
                **tally,
                detail="every member checked for consent, an address on the channel, the "
                "global control group, caps and the holdout (quiet hours defer at send time)",
            )
        scale = size / len(sample)
        p, low, high = wilson(tally["audience"], len(sample))
        scaled = {k: round(v * scale) for k, v in tally.items()}
        sized = (
            ""
            if size > len(members)
            else (f"; no segment run has sized the segment yet, so {size} is a lower bound")
        )
        return Preview(
            send_id=send_id,
            segment_size=size,
            method="estimate",
            sample_size=len(sample),
            audience_low=math.floor(low * size),
            audience_high=math.ceil(high * size),
            **scaled,
            detail=f"estimated from {len(sample)} members (a hash-spread sample): the audience "
            f"is {p:.1%} of the segment, 95% interval {low:.1%} to {high:.1%} (Wilson)" + sized,
        )

    def _segment_size(self, caller: Caller, segment: str, at_least: int) -> int:
        """The segment's size from its latest complete run (rule segments change between
        runs: at least what was read)."""
        try:
            detail = self._segments.segment(caller, segment)
        except NotFound:
            return at_least
        return max(detail.size or 0, at_least)


class PolicyScreen:
    """The audience screen as dispatch decides, without sending, in dispatch's order: consent
    for the channel's purpose (from the contact policy; a profile restricted by a privacy
    request has none), then the global control group, then an address on the channel
    (addresses.shown_address, dispatch's own test), then the caps as the customer's cap item
    stands now (a preview; dispatch decides again when it sends). The holdout's members are
    asked for the control group alone (`in_global_control`)."""

    def __init__(
        self,
        load: Callable[[str], Any],
        policy: Callable[[], ContactPolicy],
        caps: Callable[[str], CapState],
    ) -> None:
        self._load = load
        self._policy = policy
        self._caps = caps

    def in_global_control(self, customer_id: str) -> bool:
        return self._policy().in_global_control(customer_id)

    def excluded(self, customer_id: str, channel: MessageChannel, at: datetime) -> str | None:
        policy = self._policy()
        purpose = policy.channel(channel).purpose
        try:
            record = self._load(customer_id)
        except NotFound:
            return "no_consent"
        state = record.consent.get(purpose) if purpose is not None else None
        if state is None or not state.granted or record.restricted:
            return "no_consent"
        if policy.in_global_control(customer_id):
            return "global_control"
        if shown_address(record, channel) is None:
            return "no_address"
        zone = policy.zone_for(record.attributes.get("time_zone"))  # the customer's days
        if not check_caps(policy, self._caps(customer_id), channel, 0, at, zone).allowed:
            return "capped"
        return None
