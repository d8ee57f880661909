"""Journey definitions' sense checks, the A/B assignment and the time-of-day wait, without
AWS."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from crm.campaigns.journey_engine import next_time_of_day, variant_of
from crm.campaigns.journey_examples import examples
from crm.campaigns.journey_models import JourneyDefinition, SplitStep
from crm.campaigns.journeys import problems_of


def journey(steps: list[dict[str, Any]], start: str = "a") -> JourneyDefinition:
    return JourneyDefinition.model_validate(
        {"name": "j", "trigger": {"type": "event", "event_type": "cart_added"},
         "start": start, "steps": steps}
    )  # fmt: skip


def send(step_id: str, next_step: str | None = None) -> dict[str, Any]:
    return {"id": step_id, "type": "send", "channel": "sms", "template_id": "t",
            "next": next_step}  # fmt: skip


def test_the_shipped_examples_make_sense() -> None:
    assert len(examples()) == 7
    for example in examples():
        assert problems_of(example) == [], example.name


def test_a_loop_through_a_wait_is_fine_and_one_without_is_not() -> None:
    wait = {"id": "w", "type": "wait", "seconds": 86400, "next": "a"}
    assert problems_of(journey([send("a", "w"), wait])) == []
    [problem] = problems_of(journey([send("a", "b"), send("b", "a")]))
    assert "a loop without a wait" in problem.message


def test_unknown_and_unreached_steps_are_named() -> None:
    problems = problems_of(journey([send("a", "zz")]))
    assert [(p.field, p.message) for p in problems] == [("steps.0", "a goes to unknown step zz")]
    problems = problems_of(journey([send("a"), send("b")]))
    assert [p.message for p in problems] == ["step b is never reached from start"]


def test_a_wait_for_an_event_needs_a_timeout_and_a_known_event() -> None:
    wait = {"id": "a", "type": "wait", "until_event": "order_shiped", "seconds": 60}
    [problem] = problems_of(journey([wait]))
    assert problem.field == "steps.0.until_event"
    assert "unknown event type order_shiped" in problem.message


@pytest.mark.parametrize(
    "wait",
    [
        {"id": "a", "type": "wait", "seconds": 60, "until_time": "10:00"},
        {"id": "a", "type": "wait"},
        {"id": "a", "type": "wait", "seconds": 60, "timeout_next": "a"},
    ],
)
def test_a_wait_is_one_kind_of_wait(wait: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="wait"):
        journey([wait])


def test_the_split_is_deterministic_and_follows_the_weights() -> None:
    step = SplitStep.model_validate(
        {"id": "s", "type": "split", "branches": [{"name": "a", "weight": 90},
                                                  {"name": "b", "weight": 10}]}
    )  # fmt: skip
    picks = Counter(variant_of("j1", f"c{n}", step) for n in range(2000))
    assert 0.85 < picks[0] / 2000 < 0.95
    assert all(variant_of("j1", f"c{n}", step) == variant_of("j1", f"c{n}", step)
               for n in range(50))  # fmt: skip


def test_until_a_time_of_day_in_the_customers_zone() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    # 08:00 UTC is 16:00 in Shanghai: 10:00 is tomorrow morning, 02:00 UTC.
    now = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    assert next_time_of_day(now, "10:00", shanghai) == datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    assert next_time_of_day(now, "18:30", shanghai) == datetime(2026, 11, 23, 10, 30, tzinfo=UTC)
