"""The managers' queue of merges: profiles that seem to be one person, suggested by staff who
may not merge (an upsert naming identities of several profiles) or by a customer verifying a
contact another profile holds. A manager lists the open ones, approves (the profiles are
merged into the oldest) or dismisses them."""

from __future__ import annotations

from crm.auth import Caller, Permission
from crm.errors import Conflict, NotFound
from crm.profiles.change_models import MergeSuggestionPage
from crm.profiles.identity import IdentityResolution, suggestion_view
from crm.profiles.models import MergeSuggestionStatus, MergeSuggestionView
from crm.profiles.records import MergeSuggestionRecord
from crm.profiles.service import ProfileService
from crm.profiles.store import SuggestionResolved


class MergeSuggestions:
    def __init__(self, profiles: ProfileService, identity: IdentityResolution) -> None:
        self._profiles = profiles
        self._identity = identity

    def pending(
        self, caller: Caller, limit: int, page_token: str | None = None
    ) -> MergeSuggestionPage:
        caller.require(Permission.MERGE_PROFILES)
        found, token = self._profiles.store.pending_suggestions(limit, page_token)
        return MergeSuggestionPage(
            suggestions=[suggestion_view(s) for s in found], next_token=token
        )

    def approve(self, caller: Caller, suggestion_id: str) -> MergeSuggestionView:
        """Merge the suggested profiles into the oldest, then close the suggestion. A retry
        after a failure between the two finds the profiles merged and only closes it."""
        caller.require(Permission.MERGE_PROFILES)
        record = self._open(suggestion_id, MergeSuggestionStatus.APPROVED)
        if record.status is not MergeSuggestionStatus.PENDING:
            return suggestion_view(record)
        survivor, _ = self._identity.merge_all(record.customer_ids)
        closed = self._closed(record, MergeSuggestionStatus.APPROVED, caller)
        closed.survivor_id = survivor.customer_id
        try:
            self._profiles.store.resolve_suggestion(closed)
        except SuggestionResolved:
            current = self._open(suggestion_id, MergeSuggestionStatus.APPROVED, racing=True)
            if current.status is MergeSuggestionStatus.APPROVED:
                return suggestion_view(current)
            # Dismissed by another manager while this approval merged: the profiles are one
            # now, and the queue says so.
            self._profiles.store.resolve_suggestion(closed, only_pending=False)
        return suggestion_view(closed)

    def dismiss(self, caller: Caller, suggestion_id: str) -> MergeSuggestionView:
        """Not one person after all: the profiles stay apart and the suggestion leaves the
        queue (staff naming them together again opens it anew)."""
        caller.require(Permission.MERGE_PROFILES)
        record = self._open(suggestion_id, MergeSuggestionStatus.DISMISSED)
        if record.status is not MergeSuggestionStatus.PENDING:
            return suggestion_view(record)
        closed = self._closed(record, MergeSuggestionStatus.DISMISSED, caller)
        try:
            self._profiles.store.resolve_suggestion(closed)
        except SuggestionResolved:
            return suggestion_view(self._open(suggestion_id, MergeSuggestionStatus.DISMISSED))
        return suggestion_view(closed)

    def _open(
        self, suggestion_id: str, wanted: MergeSuggestionStatus, racing: bool = False
    ) -> MergeSuggestionRecord:
        """The suggestion, pending or already in the wanted state (a repeated request); with
        `racing`, in whatever state another manager left it."""
        record = self._profiles.store.suggestion(suggestion_id)
        if record is None:
            raise NotFound(f"no merge suggestion {suggestion_id}")
        if not racing and record.status not in (MergeSuggestionStatus.PENDING, wanted):
            raise Conflict(f"merge suggestion {suggestion_id} was already {record.status.value}")
        return record

    def _closed(
        self, record: MergeSuggestionRecord, status: MergeSuggestionStatus, caller: Caller
    ) -> MergeSuggestionRecord:
        return record.model_copy(
            update={
                "status": status,
                "resolved_by": caller.subject,
                "resolved_at": self._profiles.clock(),
            }
        )
