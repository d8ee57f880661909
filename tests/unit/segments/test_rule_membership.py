"""Rule-segment membership when a rule is paused, cannot be read, or fails: the customer stays
where they were in that segment, every other segment is evaluated, and the failure is logged
once and counted."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from crm.bus import Bus
from crm.profiles import ProfileRecord
from crm.profiles.models import TagState
from crm.segments import rules as rules_module
from crm.segments.membership import RuleFailures, RuleMembership
from crm.segments.models import Rule, StoredDefinition
from crm.segments.records import MembershipChange, UnreadableDefinition
from crm.segments.store import SegmentStore

NOW = datetime(2026, 11, 23, tzinfo=UTC)
VIP = Rule.model_validate({"all": [{"has_tag": "vip"}]})


def definition(name: str, rule: Rule = VIP, paused: bool = False) -> StoredDefinition:
    return StoredDefinition(name=name, description="", rule=rule, paused=paused, updated_at=NOW,
                            updated_by="m")  # fmt: skip


class Stored:
    def __init__(self, *definitions: StoredDefinition | UnreadableDefinition) -> None:
        self.items = list(definitions)
        self.applied: list[MembershipChange] = []

    def definitions(self) -> list[StoredDefinition | UnreadableDefinition]:
        return self.items

    def apply(self, changes: Sequence[MembershipChange]) -> None:
        self.applied += changes


class Published:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def publish(self, events: Sequence[Any]) -> None:
        self.events += events


def build(
    *definitions: StoredDefinition | UnreadableDefinition,
) -> tuple[RuleMembership, Published]:
    bus = Published()
    rules = RuleMembership(cast(SegmentStore, Stored(*definitions)), cast(Bus, bus), lambda: NOW,
                           RuleFailures(namespace="Test"))  # fmt: skip
    return rules, bus


def customer(tagged: bool, segments: list[str]) -> ProfileRecord:
    tags = {"vip": TagState(kind="manual", added_at=NOW, added_by="m")} if tagged else {}
    return ProfileRecord(customer_id="c1", created_at=NOW, updated_at=NOW, tags=tags,
                         segments=segments)  # fmt: skip


def emitted(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if '"_aws"' in line]


def test_a_paused_segment_keeps_its_members_as_they_are() -> None:
    rules, _ = build(definition("vip", paused=True), definition("vip-live"))
    assert rules.rule_segments(customer(False, ["vip"]), NOW) == {"vip"}  # no longer matches
    assert rules.rule_segments(customer(True, []), NOW) == {"vip-live"}  # matches, not let in


def skipped(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        {k: getattr(r, k) for k in ("segment", "stage", "error", "problems")}
        for r in caplog.records
        if r.getMessage() == "rule segment skipped"
    ]


def test_a_failing_rule_is_skipped_for_the_customer_logged_once_and_counted(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = Rule.model_validate({"all": [{"has_tag": "broken"}]})
    real = rules_module.matches

    def matches(record: ProfileRecord, rule: Rule, now: datetime) -> bool:
        if rule is broken:
            raise TypeError("a bug in one rule")
        return real(record, rule, now)

    monkeypatch.setattr("crm.segments.membership.matches", matches)
    rules, _ = build(definition("broken", broken), definition("vip"))
    for _ in range(3):
        assert rules.rule_segments(customer(True, ["broken"]), NOW) == {"broken", "vip"}
    assert rules.rule_segments(customer(True, []), NOW) == {"vip"}
    out = capsys.readouterr().out
    assert skipped(caplog) == [
        {"segment": "broken", "stage": "evaluate", "error": "TypeError", "problems": []}
    ]
    assert "c1" not in caplog.text + out  # never the customer
    metrics = emitted(out)
    # The first failure is counted at once; the rest within the minute wait for the next flush.
    assert [(m["Segment"], m["RuleSegmentFailed"]) for m in metrics] == [("broken", [1.0])]


def test_failures_are_flushed_at_most_once_a_minute_with_their_count(
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = [1000.0]
    failures = RuleFailures(namespace="Test", monotonic=lambda: clock[0])
    for _ in range(5):
        failures.record("bad", "evaluate", "ValueError")
    clock[0] += 61
    failures.record("bad", "evaluate", "ValueError")
    metrics = emitted(capsys.readouterr().out)
    assert [m["RuleSegmentFailed"] for m in metrics] == [[1.0], [5.0]]


def test_a_stored_definition_this_version_cannot_read_leaves_members_where_they_are(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    unreadable = UnreadableDefinition(
        "old", paused=False, problems=("rule.all.0.op: op gt does not apply",)
    )
    rules, _ = build(unreadable, definition("vip"))
    assert rules.evaluate(customer(True, ["old", "tier:new"]), NOW) == ["old", "tier:new", "vip"]
    assert rules.evaluate(customer(False, []), NOW) == []
    assert skipped(caplog) == [{"segment": "old", "stage": "read",
                                "error": "UnreadableDefinition",
                                "problems": ["rule.all.0.op: op gt does not apply"]}]  # fmt: skip
    assert [m["Segment"] for m in emitted(capsys.readouterr().out)] == ["old"]


def test_leaving_a_deleted_segment_is_not_announced() -> None:
    rules, bus = build(definition("vip"))
    rules.apply([MembershipChange("gone", "c1", False), MembershipChange("vip", "c1", True),
                 MembershipChange("tier:new", "c1", True)], run_id=None)  # fmt: skip
    assert [(e.segment, e.change) for e in bus.events] == [("vip", "entered"),
                                                           ("tier:new", "entered")]  # fmt: skip


def test_computed_transitions_are_announced_but_write_no_membership_item() -> None:
    """Tiers and RFM cells are listed from the scores items: the store writes rule segments'
    items only, plus the legacy deletes it is handed; the bus hears every transition."""
    store = Stored(definition("vip"))
    bus = Published()
    rules = RuleMembership(cast(SegmentStore, store), cast(Bus, bus), lambda: NOW)
    legacy = [MembershipChange("tier:regular", "c1", False)]
    changes = [MembershipChange("vip", "c1", True), MembershipChange("tier:new", "c1", True),
               MembershipChange("rfm:lost", "c1", False)]  # fmt: skip
    rules.apply(changes, run_id="r1", legacy=legacy)
    assert store.applied == [MembershipChange("vip", "c1", True), *legacy]
    assert [(e.segment, e.change) for e in bus.events] == [
        ("vip", "entered"), ("tier:new", "entered"), ("rfm:lost", "left")]  # fmt: skip

    # Only computed transitions: nothing to write, every one announced.
    store.applied.clear()
    rules.apply([MembershipChange("tier:new", "c2", True)], run_id="r1")
    assert store.applied == []
    assert bus.events[-1].segment == "tier:new"


def test_a_merged_away_customer_leaves_the_computed_segments_and_their_legacy_items() -> None:
    from crm.profiles import SegmentShift

    store = Stored(definition("vip"))
    rules = RuleMembership(cast(SegmentStore, store), cast(Bus, Published()), lambda: NOW)
    rules.announce([SegmentShift("c2", ("rfm:lost", "tier:new", "vip"), ())])
    assert sorted(store.applied) == sorted([MembershipChange("rfm:lost", "c2", False),
                                            MembershipChange("tier:new", "c2", False),
                                            MembershipChange("vip", "c2", False)])  # fmt: skip


def test_a_run_reads_the_rules_afresh_once_when_the_cache_is_older_than_the_run() -> None:
    """A warm worker's minute-long cache may predate a rule defined seconds ago: a run
    requested after the cached read reads the rules again, once (later shards use that)."""
    clock = [NOW]
    store = Stored(definition("vip"))
    reads = 0
    real = store.definitions

    def counted() -> list[StoredDefinition | UnreadableDefinition]:
        nonlocal reads
        reads += 1
        return list(real())  # a copy, as a store reads a new list

    store.definitions = counted  # type: ignore[method-assign]
    rules = RuleMembership(cast(SegmentStore, store), cast(Bus, Published()), lambda: clock[0])
    assert [d.name for d in rules.definitions()] == ["vip"]
    store.items.append(definition("moms"))
    assert [d.name for d in rules.definitions()] == ["vip"]  # cached
    assert [d.name for d in rules.definitions(fresh_since=NOW)] == ["vip"]  # read at NOW: fresh
    clock[0] = NOW + timedelta(seconds=5)
    run_started = NOW + timedelta(seconds=1)
    assert [d.name for d in rules.definitions(fresh_since=run_started)] == ["vip", "moms"]
    assert [d.name for d in rules.definitions(fresh_since=run_started)] == ["vip", "moms"]
    assert reads == 2
