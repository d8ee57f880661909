"""The sweep: every minute, the shards with timers due within the lead are handed to workers
(one SQS message per shard), and each worker queues its shard's wake-ups on their kinds' queues
with a delay to the second, then deletes the due items it queued.

Nothing is lost when a sweep is missed (an outage, a throttled worker): due items stay until
their wake-up is queued, and the next sweep reads everything due up to its horizon, however
old. A worker that stops half way (a timeout, a crash) leaves duplicates at worst, which the
consumers' claims absorb.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from aws_lambda_powertools import Logger

from crm.clock import Clock
from crm.queue import Queue
from crm.sqs_consumer import PoisonMessage
from crm.timers.records import LEAD, SHARDS
from crm.timers.service import KindQueues, delay_seconds
from crm.timers.store import DueItem, TimerStore

logger = Logger(child=True)

# Due items read per page: 25 SendMessageBatch and 10 BatchWriteItem calls a page.
PAGE = 250
# A worker stops taking pages after this long, well before the next minute's sweep hands its
# shard out again (which would queue the same items twice), and before its Lambda timeout.
WORK_BUDGET_S = 45.0
# Seconds kept in hand before the Lambda timeout.
TIMEOUT_MARGIN_S = 15.0


@dataclass(frozen=True)
class ShardSwept:
    shard: int
    queued: int
    unknown_kind: int
    more: bool  # stopped at its time budget with items still due: the next sweep goes on


def shard_task(body: str) -> int:
    """The shard a sweep message names, or PoisonMessage."""
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        raise PoisonMessage('a sweep task is JSON: {"shard": n}') from None
    shard = data.get("shard") if isinstance(data, dict) else None
    if not isinstance(shard, int) or isinstance(shard, bool) or not 0 <= shard < SHARDS:
        raise PoisonMessage(f"shard: an integer 0-{SHARDS - 1}")
    return shard


class TimerSweep:
    def __init__(
        self,
        store: TimerStore,
        kinds: KindQueues,
        tasks: Queue,
        clock: Clock,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store, self._kinds, self._tasks = store, kinds, tasks
        self._clock, self._monotonic = clock, monotonic

    def plan(self) -> list[int]:
        """Hand each shard with something due to a worker; returns those shards. One small
        query a shard, so an idle minute costs 32 reads and no worker at all."""
        horizon = self._clock() + LEAD
        busy = [shard for shard in range(SHARDS) if self._store.has_due(shard, horizon)]
        self._tasks.send([json.dumps({"shard": shard}) for shard in busy])
        return busy

    def sweep(self, shard: int, remaining_s: float = 60.0) -> ShardSwept:
        """Queue the wake-ups of every timer of `shard` due by now + LEAD, then delete their
        due items; page by page, until none is left or the time budget is spent (the Lambda's
        `remaining_s` less a margin, at most WORK_BUDGET_S)."""
        budget_s = max(1.0, min(WORK_BUDGET_S, remaining_s - TIMEOUT_MARGIN_S))
        started = self._monotonic()
        queued = unknown = 0
        start = None
        while True:
            now = self._clock()
            page, start = self._store.due(shard, now + LEAD, PAGE, start)
            queued += self._queue(page)
            unknown += sum(1 for item in page if item.wake_up.kind not in self._kinds)
            if start is None:
                return ShardSwept(shard, queued, unknown, more=False)
            if self._monotonic() - started > budget_s:
                return ShardSwept(shard, queued, unknown, more=True)

    def _queue(self, page: list[DueItem]) -> int:
        by_kind: dict[str, list[DueItem]] = defaultdict(list)
        for item in page:
            if item.wake_up.kind in self._kinds:
                by_kind[item.wake_up.kind].append(item)
            else:
                # A kind whose queue was taken out of the template: its timers stay, named in
                # the log (kind and ids, no PII), until the kind is configured again.
                logger.error("timer of an unknown kind", extra={
                    "kind": item.wake_up.kind, "timer_id": item.wake_up.timer_id})  # fmt: skip
        now = self._clock()
        for kind, items in by_kind.items():
            wakes = [item.wake_up for item in items]
            self._kinds.queue(kind).send(
                [w.body() for w in wakes], [delay_seconds(w.due_at, now) for w in wakes]
            )
            # Deleted only once queued: a crash in between sends them again (claims absorb it).
            self._store.delete_due([item.key for item in items])
        return sum(len(items) for items in by_kind.values())
