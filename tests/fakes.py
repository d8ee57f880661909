"""In-memory stand-ins for the stores and adapters, for service tests that need no AWS.

They keep the semantics the services rely on (conditional, all-or-nothing commits; ledger
entries written once), checked against the moto-backed stores by the same service tests."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from crm.keys import UnreadableKey
from crm.profiles.models import MergeSuggestionStatus
from crm.profiles.records import (
    LedgerEntry,
    LedgerKind,
    MergeSuggestionRecord,
    OrderPayment,
    ProfileRecord,
    payment_key,
)
from crm.profiles.service import SegmentShift
from crm.profiles.store import (
    AppendEntry,
    ClaimIdentity,
    DuplicateEntry,
    IdentityTaken,
    RecordRefund,
    ReleaseIdentity,
    SaveProfile,
    StaleProfile,
    SuggestionResolved,
    Write,
)


class FakeProfileStore:
    def __init__(self) -> None:
        self.profiles: dict[str, ProfileRecord] = {}
        self.identities: dict[tuple[str, str], str] = {}
        self.ledger: dict[str, LedgerEntry] = {}
        self.refunded: dict[str, Decimal] = {}  # by payment entry key
        self.suggestions: dict[str, MergeSuggestionRecord] = {}
        self.commits = 0

    def get(self, customer_id: str) -> ProfileRecord | None:
        found = self.profiles.get(customer_id)
        return copy.deepcopy(found) if found else None

    def owners(self, identities: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        return {i: self.identities[i] for i in identities if i in self.identities}

    def existing(self, customer_ids: Iterable[str]) -> set[str]:
        return {c for c in customer_ids if c in self.profiles}

    def payment(self, order_id: str) -> OrderPayment | None:
        entry = self.ledger.get(payment_key(order_id))
        if entry is None:
            return None
        refunded = self.refunded.get(entry.key, Decimal("0.00"))
        amount = Decimal(entry.body["amount"])
        return OrderPayment(customer_id=entry.customer_id, amount=amount, refunded=refunded)

    def entry_owners(self, keys: Sequence[str]) -> dict[str, str]:
        return {k: self.ledger[k].customer_id for k in keys if k in self.ledger}

    def suggest_merge(self, record: MergeSuggestionRecord) -> MergeSuggestionRecord:
        found = self.suggestions.get(record.suggestion_id)
        if found is not None and found.status is MergeSuggestionStatus.PENDING:
            return copy.deepcopy(found)
        self.suggestions[record.suggestion_id] = copy.deepcopy(record)
        return record

    def suggestion(self, suggestion_id: str) -> MergeSuggestionRecord | None:
        return copy.deepcopy(self.suggestions.get(suggestion_id))

    def pending_suggestions(
        self, limit: int, page_token: str | None = None
    ) -> tuple[list[MergeSuggestionRecord], str | None]:
        pending = [
            s for s in self.suggestions.values() if s.status is MergeSuggestionStatus.PENDING
        ]
        pending.sort(key=lambda s: (s.requested_at, s.suggestion_id))
        return copy.deepcopy(pending[:limit]), None

    def resolve_suggestion(self, record: MergeSuggestionRecord, only_pending: bool = True) -> None:
        current = self.suggestions.get(record.suggestion_id)
        if only_pending and (
            current is None or current.status is not MergeSuggestionStatus.PENDING
        ):
            raise SuggestionResolved(record.suggestion_id)
        self.suggestions[record.suggestion_id] = copy.deepcopy(record)

    def entries(
        self, kind: LedgerKind, customer_id: str, limit: int, page_token: str | None = None
    ) -> tuple[list[LedgerEntry], str | None]:
        mine = [e for e in self.ledger.values() if e.kind == kind and e.customer_id == customer_id]
        mine.sort(key=lambda e: (e.at, e.key), reverse=True)
        return mine[:limit], None

    def commit(self, writes: Sequence[Write]) -> None:
        """All or nothing, with the conditions the DynamoDB store puts on each write."""
        for write in writes:
            self._check(write)
        self.commits += 1
        for write in writes:
            self._apply(write)

    def _check(self, write: Write) -> None:
        if isinstance(write, SaveProfile):
            current = self.profiles.get(write.record.customer_id)
            current_rev = None if current is None else current.rev
            if current_rev != write.expected_rev:
                raise StaleProfile(write.record.customer_id)
        elif isinstance(write, ClaimIdentity):
            owner = self.identities.get((write.channel, write.key))
            wanted = write.taken_from if write.taken_from else write.customer_id
            if owner is not None and owner != wanted:
                raise IdentityTaken(write.channel)
        elif isinstance(write, ReleaseIdentity):
            if self.identities.get((write.channel, write.key)) != write.customer_id:
                raise StaleProfile(write.customer_id)
        elif isinstance(write, RecordRefund):
            key = payment_key(write.order_id)
            if key not in self.ledger or self.refunded.get(key, Decimal(0)) != write.before:
                raise StaleProfile(f"refunds of order {write.order_id}")
        elif isinstance(write, AppendEntry) and write.entry.key in self.ledger:
            existing = self.ledger[write.entry.key]
            raise DuplicateEntry(write.entry.key, existing.model_dump(mode="json"))

    def _apply(self, write: Write) -> None:
        if isinstance(write, SaveProfile):
            self.profiles[write.record.customer_id] = copy.deepcopy(write.record)
        elif isinstance(write, ClaimIdentity):
            self.identities[(write.channel, write.key)] = write.customer_id
        elif isinstance(write, ReleaseIdentity):
            del self.identities[(write.channel, write.key)]
        elif isinstance(write, AppendEntry):
            self.ledger[write.entry.key] = write.entry
            if write.refunded is not None:
                self.refunded[write.entry.key] = write.refunded
        elif isinstance(write, RecordRefund):
            self.refunded[payment_key(write.order_id)] = write.after


class FakeDataKeys:
    """Data keys without KMS: a fixed key per customer, 'wrapped' as its own bytes."""

    def create(self, customer_id: str) -> tuple[bytes, bytes]:
        key = (customer_id.encode() * 32)[:32]
        return key, key

    def unwrap(self, customer_id: str, wrapped: bytes) -> bytes:
        return wrapped


class FakeTransitKeys:
    """Transit keys without KMS: a batch's key derived from its id, 'wrapped' as a label that
    unwraps for that batch only (KMS checks the encryption context the same way). Counts calls."""

    def __init__(self) -> None:
        self.created = 0
        self.unwrapped = 0

    @staticmethod
    def _key(batch_id: str) -> bytes:
        return hashlib.sha256(batch_id.encode()).digest()

    def create(self, batch_id: str) -> tuple[bytes, bytes]:
        self.created += 1
        return self._key(batch_id), f"wrapped:{batch_id}".encode()

    def unwrap(self, batch_id: str, wrapped: bytes) -> bytes:
        self.unwrapped += 1
        if wrapped != f"wrapped:{batch_id}".encode():
            raise UnreadableKey("InvalidCiphertextException")
        return self._key(batch_id)


@dataclass
class RecordingRuleSegments:
    """Rule segments as the segments family keeps them, with one rule: `vip` holds the
    customers tagged vip or holding 1,000 points or more."""

    evaluated: list[str] = field(default_factory=list)
    announced: list[SegmentShift] = field(default_factory=list)

    def evaluate(self, record: ProfileRecord, now: datetime) -> list[str]:
        self.evaluated.append(record.customer_id)
        vip = "vip" in record.tags or record.points_balance >= 1000
        kept = [s for s in record.segments if s != "vip"]
        return sorted([*kept, "vip"]) if vip else kept

    def announce(self, shifts: Sequence[SegmentShift]) -> None:
        self.announced.extend(shifts)


def sequence_ids(prefix: str = "id") -> Any:
    counter = iter(range(1, 1_000_000))
    return lambda: f"{prefix}{next(counter)}"


@dataclass
class TestClock:
    """A clock a test moves by hand (services take it as their `clock`)."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now
