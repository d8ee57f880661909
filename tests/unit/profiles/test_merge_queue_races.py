"""Merge suggestions when managers act at the same moment, on in-memory fakes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import pytest

from crm.auth import Caller, Role
from crm.errors import Conflict
from crm.keys import DataKeys
from crm.pii import BlindIndex
from crm.profiles.identity import IdentityResolution
from crm.profiles.merge_suggestions import MergeSuggestions
from crm.profiles.models import MergeSuggestionStatus, UpsertCustomer
from crm.profiles.records import MergeSuggestionRecord
from crm.profiles.service import ProfileService
from crm.profiles.store import ProfileStore
from crm.profiles.views import CustomerViews
from tests.fakes import FakeDataKeys, FakeProfileStore, RecordingRuleSegments, sequence_ids

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
AGENT = Caller(subject="agent-1", roles=frozenset({Role.SUPPORT_AGENT}))
MANAGER = Caller(subject="manager-1", roles=frozenset({Role.SUPPORT_MANAGER}))
OTHER_MANAGER = Caller(subject="manager-2", roles=frozenset({Role.SUPPORT_MANAGER}))


class Queue:
    def __init__(self) -> None:
        self.store = FakeProfileStore()
        service = ProfileService(
            cast(ProfileStore, self.store),
            cast(DataKeys, FakeDataKeys()),
            lambda: BlindIndex(b"test-key"),
            RecordingRuleSegments(),
            clock=lambda: NOW,
            ids=sequence_ids("c"),
            sleep=lambda _: None,
        )
        self.identity = IdentityResolution(service, CustomerViews(service))
        self.queue = MergeSuggestions(service, self.identity)

    def upsert(self, caller: Caller, *external_ids: str) -> tuple[str, str | None]:
        body = UpsertCustomer.model_validate(
            {"identities": [{"channel": "app", "external_id": x} for x in external_ids]}
        )
        out = self.identity.upsert_customer(caller, body)
        suggestion = out.merge_suggestion
        return out.customer_id, suggestion.suggestion_id if suggestion else None

    def suggested(self) -> str:
        self.upsert(MANAGER, "a")
        self.upsert(MANAGER, "b")
        _, sid = self.upsert(AGENT, "a", "b")
        assert sid is not None
        return sid

    def act_first(self, caller: Caller, action: str) -> None:
        """Let another manager act just before this one closes the suggestion."""
        resolve = self.store.resolve_suggestion
        queue = MergeSuggestions.__dict__[action]

        def racing(record: MergeSuggestionRecord, only_pending: bool = True) -> None:
            self.store.resolve_suggestion = resolve  # type: ignore[method-assign]
            queue(self.queue, caller, record.suggestion_id)
            resolve(record, only_pending)

        self.store.resolve_suggestion = racing  # type: ignore[method-assign]


def test_an_agent_upsert_is_one_suggestion_and_no_write_to_profiles() -> None:
    q = Queue()
    sid = q.suggested()
    commits = q.store.commits
    assert q.upsert(AGENT, "b", "a")[1] == sid
    assert q.store.commits == commits
    assert [s.suggestion_id for s in q.queue.pending(MANAGER, 10).suggestions] == [sid]


def test_a_dismissal_racing_an_approval_leaves_the_merged_truth() -> None:
    q = Queue()
    sid = q.suggested()
    q.act_first(OTHER_MANAGER, "dismiss")
    out = q.queue.approve(MANAGER, sid)
    assert out.status is MergeSuggestionStatus.APPROVED
    assert out.survivor_id == "c1"
    stored = q.store.suggestions[sid]
    assert (stored.status, stored.resolved_by) == (MergeSuggestionStatus.APPROVED, "manager-1")
    assert q.store.profiles["c2"].merged_into == "c1"


def test_two_approvals_at_once_merge_once_and_agree() -> None:
    q = Queue()
    sid = q.suggested()
    q.act_first(OTHER_MANAGER, "approve")
    out = q.queue.approve(MANAGER, sid)
    assert out.status is MergeSuggestionStatus.APPROVED
    assert out.resolved_by == "manager-2"  # the first to close it
    assert q.store.profiles["c1"].merged_from == ["c2"]


def test_a_dismissal_losing_to_an_approval_is_a_conflict() -> None:
    q = Queue()
    sid = q.suggested()
    q.act_first(OTHER_MANAGER, "approve")
    with pytest.raises(Conflict, match="already approved"):
        q.queue.dismiss(MANAGER, sid)
