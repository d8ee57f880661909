"""The stored shape of a profile and of ledger entries (internal; never returned as is)."""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal, NamedTuple

from pydantic import Field

from crm.models import Record
from crm.profiles.record_models import (
    Aggregates,
    Channel,
    ConsentState,
    ContactField,
    CustomerScores,
    LinkingIdentity,
    MergeReason,
    MergeSuggestionStatus,
    TagState,
)


class StoredIdentity(Record):
    channel: Channel
    key: str = Field(description="the index key: the external id, or a blind-index token for PII")
    display: str = Field(description="what staff without PII access may see")


class PendingContact(Record):
    """A phone or email the customer asked for and has not verified: sealed like every PII
    field (under the customer's key, bound to `pending_<field>`), never an identity yet."""

    sealed: str
    masked: str
    requested_at: datetime
    expires_at: datetime


class ProfileRecord(Record):
    customer_id: str
    version: int = 1
    rev: int = 0
    residency: str | None = Field(
        default=None, description="its data region; None: created before residency was kept"
    )
    created_at: datetime
    updated_at: datetime
    attributes: dict[str, Any] = Field(default={}, description="non-PII attributes")
    sealed: dict[str, str] = Field(default={}, description="encrypted PII fields")
    masked: dict[str, str] = Field(default={}, description="masked PII fields")
    wrapped_key: bytes | None = Field(default=None, exclude=True)
    identities: list[StoredIdentity] = Field(default=[])
    consent: dict[str, ConsentState] = Field(default={})
    tags: dict[str, TagState] = Field(default={})
    points_balance: int = 0
    aggregates: Aggregates = Field(default_factory=Aggregates)
    merged_from: list[str] = Field(default=[])
    merged_into: str | None = None
    scores: CustomerScores | None = None
    segments: list[str] = Field(default=[], description="segments the customer is in")
    pending: dict[ContactField, PendingContact] = Field(
        default={}, description="unverified phone/email changes, by field"
    )
    restricted: bool = Field(
        default=False,
        description="processing restricted by a privacy request: no marketing reaches them",
    )


LedgerKind = Literal["EVT", "PTS", "CNS"]


class LedgerEntry(Record):
    """One thing that happened to a customer, stored once under its idempotency key."""

    key: str
    kind: LedgerKind
    customer_id: str
    at: datetime
    body: dict[str, Any]


def order_entry_key(order_id: str, event_type: str) -> str:
    """The ledger's idempotency key of an order event (`order_placed`, `order_paid`)."""
    return f"order:{order_id}:{event_type}"


def suggestion_id_for(customer_ids: Sequence[str]) -> str:
    """One suggestion per set of profiles, however often staff name them together."""
    joined = "|".join(sorted(set(customer_ids)))
    return "m-" + hashlib.sha256(joined.encode()).hexdigest()[:24]


class MergeSuggestionRecord(Record):
    """Profiles that seem to be one person, waiting for a manager to merge them or not."""

    suggestion_id: str
    status: MergeSuggestionStatus = MergeSuggestionStatus.PENDING
    reason: MergeReason
    customer_ids: list[str]
    identities: list[LinkingIdentity] = Field(default=[])
    requested_by: str
    requested_at: datetime
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    survivor_id: str | None = None


def payment_key(order_id: str) -> str:
    """The idempotency key of an order's payment (`OrderEvent.dedup_key` of its order_paid)."""
    return order_entry_key(order_id, "order_paid")


class OrderPayment(Record):
    """An order's payment as its ledger entry holds it."""

    customer_id: str
    amount: Decimal
    refunded: Decimal = Field(
        default=Decimal("0.00"),
        description="what the order's refunds asked back so far; may exceed the amount",
    )


UNPROJECTED = datetime(1970, 1, 1, tzinfo=UTC)  # times the `scoring` index does not project
RUN_SEGMENT_MARK = ":"  # tier:..., rfm:...; a rule segment's name never holds one


# A segment of millions must not be one hot partition (1,000 writes/s each): its members are
# spread over this many partitions by a hash of the customer id (rule segments' SEG#<name>#<k>
# items in SegmentsTable, and the computed families' index keys on the scores items).
MEMBER_SHARDS = 16
# The computed families whose membership is their own sparse, keys-only index of the scores
# items: segment-name prefix -> (index name, key attribute).
MEMBER_INDEXES = {"tier:": ("tier_members", "TIER"), "rfm:": ("rfm_members", "RFM")}
INDEX_MISSING = "MISSING"  # a member index's state before the deploy that adds it


def member_shard(customer_id: str) -> int:
    return int(hashlib.sha256(customer_id.encode()).hexdigest()[:8], 16) % MEMBER_SHARDS


def member_index(segment: str) -> tuple[str, str] | None:
    """The (index, key attribute) holding a computed segment's members; None for the rest."""
    return next((v for prefix, v in MEMBER_INDEXES.items() if segment.startswith(prefix)), None)


def member_key(segment: str, customer_id: str) -> str:
    """The index key of a member of a computed segment: `tier:gold#07`."""
    return f"{segment}#{member_shard(customer_id):02d}"


def is_run_segment(name: str) -> bool:
    """Segments a segment run computes (kept on the profile's scores item) as opposed to rule
    segments (kept on the profile item): rule segment names cannot hold a colon."""
    return RUN_SEGMENT_MARK in name


@dataclass
class ScoringProfile:
    """A live profile as a segment run reads it from the sparse `scoring` index: what scoring
    and rule segments need and nothing else, parsed without validating the whole profile.
    Not a whole profile: it is never saved as one.

    `record` is a lean ProfileRecord (built unvalidated) whose order aggregates, scores and
    segments are exact; `full_record()` validates every projected attribute, for rule
    segments, which may read any of them."""

    customer_id: str
    rev: int
    record: ProfileRecord
    scores: CustomerScores | None
    run_segments: list[str]
    rule_segments: list[str]
    scores_stored: bool  # its scores item exists (profiles scored before it may hold legacy scores)
    projected: dict[str, Any] = field(repr=False, default_factory=dict)
    _full: ProfileRecord | None = field(repr=False, default=None)

    def full_record(self) -> "ProfileRecord":
        if self._full is None:
            # The index does not project the times (nothing scored reads them).
            full = ProfileRecord.model_validate(
                {"created_at": UNPROJECTED, "updated_at": UNPROJECTED, **self.projected}
            )
            full.scores = self.scores
            full.segments = sorted({*self.rule_segments, *self.run_segments})
            self._full = full
        return self._full


class ScoresWrite(NamedTuple):
    """What a segment run writes for one customer: the scores item, whole (it is small)."""

    customer_id: str
    run_id: str
    scores: CustomerScores
    run_segments: tuple[str, ...]
