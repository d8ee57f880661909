"""EventBridge's scheduler on 127.0.0.1: fires the template's schedule expressions on time, and
any of them now with `crm-local fire NAME`."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from crm_local.provision import ACCOUNT, REGION
from crm_local.schedule import Cron, Rate, parse_schedule
from crm_local.triggers import ScheduleTrigger

log = logging.getLogger("crm_local.clock")

Send = Callable[[str, str], None]  # (function, message body) -> put in the function's tap queue
Now = Callable[[], datetime]


def scheduled_event(trigger: ScheduleTrigger, at: datetime) -> dict[str, Any]:
    if trigger.input is not None:
        data: dict[str, Any] = json.loads(trigger.input)
        return data
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{trigger.name}"],
        "detail": {},
    }


class Clock(threading.Thread):
    def __init__(
        self,
        schedules: list[ScheduleTrigger],
        send: Send,
        stop: threading.Event,
        now: Now = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(name="clock", daemon=True)
        self.schedules = schedules
        self.parsed: dict[str, Cron | Rate] = {
            s.name: parse_schedule(s.expression) for s in schedules
        }
        self.send, self.stop_event, self.now = send, stop, now
        started = now()
        # EventBridge fires a rate schedule one period after the rule is created.
        self.next_rate = {
            s.name: started + rule.every
            for s in schedules
            if isinstance(rule := self.parsed[s.name], Rate)
        }
        self.last_minute = started.replace(second=0, microsecond=0)

    def find(self, name: str) -> ScheduleTrigger:
        for trigger in self.schedules:
            if trigger.name == name or trigger.name.endswith(f"-{name}"):
                return trigger
        known = ", ".join(s.name for s in self.schedules) or "none"
        raise KeyError(f"no schedule named {name} (schedules: {known})")

    def fire(self, trigger: ScheduleTrigger, at: datetime | None = None) -> None:
        event = scheduled_event(trigger, at or self.now())
        self.send(trigger.function, json.dumps(event))
        log.info("fired %s -> %s", trigger.name, trigger.function)

    def tick(self) -> None:
        now = self.now()
        for trigger in self.schedules:
            if not trigger.enabled:
                continue
            rule = self.parsed[trigger.name]
            if isinstance(rule, Rate) and now >= self.next_rate[trigger.name]:
                # Once, however many periods passed: after `crm-local clock advance 30d` a
                # rate(1 minute) schedule fires once, not 43,200 times.
                missed = (now - self.next_rate[trigger.name]) // rule.every
                latest = self.next_rate[trigger.name] + rule.every * missed
                self.fire(trigger, latest)
                self.next_rate[trigger.name] = latest + rule.every
        minute = now.replace(second=0, microsecond=0)
        if minute > self.last_minute:
            passed = self._minutes_since(self.last_minute, minute)
            self.last_minute = minute
            for trigger in self.schedules:
                rule = self.parsed[trigger.name]
                if not (trigger.enabled and isinstance(rule, Cron)):
                    continue
                matching = [m for m in passed if rule.matches(m)]
                if matching:  # once, at the latest minute that matched
                    self.fire(trigger, matching[-1])

    @staticmethod
    def _minutes_since(last: datetime, minute: datetime) -> list[datetime]:
        """The minutes after `last` up to `minute`, at most a year of them (a time jump)."""
        first = max(last + timedelta(minutes=1), minute - timedelta(days=366))
        count = int((minute - first) / timedelta(minutes=1)) + 1
        return [first + timedelta(minutes=n) for n in range(count)]

    def run(self) -> None:
        while not self.stop_event.wait(1):
            try:
                self.tick()
            except Exception:
                log.exception("clock tick failed")
