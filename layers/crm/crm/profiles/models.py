"""The customer profile's API: what clients send, what the 360° view returns. The shapes a
stored profile is made of are defined in `crm.profiles.record_models` (all the event folder
loads) and re-exported here for the API's modules."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from crm.config import DataRegion
from crm.models import NOT_BLANK, Integer, Output, StrictInput, UtcDatetime
from crm.profiles.record_models import (
    CONTACT_CHANNELS,
    MAX_IDENTITIES,
    MAX_TAGS,
    PII_CHANNELS,
    RESIDENCY,
    Address,
    Aggregates,
    BehaviourAggregates,
    Channel,
    ConsentPurpose,
    ConsentState,
    ContactField,
    CustomerScores,
    Email,
    EmailInput,
    ExternalId,
    Identity,
    Key,
    LinkingIdentity,
    MergeReason,
    MergeSuggestionStatus,
    OrderAggregates,
    Phone,
    PhoneInput,
    ProfileAttributes,
    ShortText,
    TagKind,
    TagState,
    TimeZoneName,
)

__all__ = [
    "CONTACT_CHANNELS",
    "MAX_IDENTITIES",
    "MAX_TAGS",
    "PII_CHANNELS",
    "RESIDENCY",
    "Address",
    "AddressView",
    "Aggregates",
    "AttributesView",
    "BehaviourAggregates",
    "Channel",
    "ConsentChange",
    "ConsentPurpose",
    "ConsentState",
    "ConsentView",
    "ContactField",
    "Customer360",
    "CustomerMatch",
    "CustomerMatches",
    "CustomerScores",
    "CustomerSelfView",
    "EditProfile",
    "Email",
    "EmailInput",
    "ExternalId",
    "FindCustomers",
    "Identity",
    "IdentityView",
    "Key",
    "LinkingIdentity",
    "MergeCustomers",
    "MergeReason",
    "MergeSuggestionPage",
    "MergeSuggestionStatus",
    "MergeSuggestionView",
    "OrderAggregates",
    "PendingContactView",
    "Phone",
    "PhoneInput",
    "PointsChange",
    "PointsEntry",
    "PointsView",
    "ProfileAttributes",
    "ProfileView",
    "SearchCriterion",
    "ShortText",
    "TagChange",
    "TagInput",
    "TagKind",
    "TagName",
    "TagState",
    "TagsView",
    "TimeZoneName",
    "TimelineEntry",
    "UpsertCustomer",
    "UpsertResult",
]


class UpsertCustomer(StrictInput):
    """Create a profile, or find the one these identities already belong to."""

    # The phone and email attributes are identities too: room is left for them, so that a
    # request the document allows never overflows a profile.
    identities: list[Identity] = Field(min_length=1, max_length=MAX_IDENTITIES - 2)
    attributes: ProfileAttributes = Field(default_factory=ProfileAttributes)
    residency: DataRegion | None = Field(default=None, description=RESIDENCY)


class EditProfile(StrictInput):
    """Partial update: fields present are set, fields set to null are cleared."""

    version: Integer = Field(ge=1, description="the profile version this edit is based on")
    attributes: ProfileAttributes


class MergeCustomers(StrictInput):
    source_customer_id: Key


class ConsentChange(StrictInput):
    purpose: ConsentPurpose
    granted: bool
    source: Key = Field(description="where the decision was taken: a channel, a store id, ...")
    decided_at: UtcDatetime | None = Field(
        default=None, description="when the customer decided; defaults to now"
    )


TagName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=NOT_BLANK)
]


class TagInput(StrictInput):
    name: TagName
    kind: TagKind = TagKind.MANUAL


class TagChange(StrictInput):
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["add"], "properties": {"add": {"minItems": 1}}},
                {"required": ["remove"], "properties": {"remove": {"minItems": 1}}},
            ]
        }
    )

    add: list[TagInput] = Field(default_factory=list, max_length=MAX_TAGS)
    remove: list[TagName] = Field(default_factory=list, max_length=MAX_TAGS)

    @model_validator(mode="after")
    def _not_empty(self) -> TagChange:
        if not self.add and not self.remove:
            raise ValueError("add or remove at least one tag")
        return self


class PointsChange(StrictInput):
    txn_id: Key = Field(description="idempotency key: a retried transaction is applied once")
    kind: Literal["earn", "redeem"]
    points: Integer = Field(gt=0, le=10_000_000)
    reason: Annotated[str, StringConstraints(max_length=200)] = ""
    channel: Channel | None = None
    store_id: Key | None = None


class PointsEntry(Output):
    txn_id: str
    kind: Literal["earn", "redeem"]
    points: int
    balance_after: int
    reason: str
    channel: Channel | None
    store_id: str | None
    at: datetime


class PointsView(Output):
    customer_id: str
    balance: int
    entries: list[PointsEntry]
    next_token: str | None = None


class IdentityView(Output):
    channel: Channel
    external_id: str


class AddressView(Output):
    province: str | None = None
    city: str | None = None
    district: str | None = None
    postal_code: str | None = None
    line: str | None = None


class AttributesView(Output):
    name: str | None = None
    phone: Phone | None = None
    email: Email | None = None
    gender: str | None = None
    birthday: date | None = None
    city: str | None = None
    locale: str | None = None
    address: AddressView | None = None
    preferred_store_id: str | None = None
    time_zone: str | None = None


class TimelineEntry(Output):
    event_id: str
    type: str
    occurred_at: datetime
    order_id: str | None = None
    amount: Decimal | None = None
    sku: str | None = None
    category: str | None = None
    case: str | None = None
    channel: str | None = None
    note: str | None = Field(default=None, description="masked (****) for roles without PII")


class PendingContactView(Output):
    """A phone or email the customer asked for, waiting for them to prove they hold it."""

    field: ContactField
    value: str = Field(description="masked: 139****0000, j***@example.com")
    expires_at: datetime


class Customer360(Output):
    """What staff read: every attribute, PII masked or full by role, and the internal
    marketing data (tags with who added them, scores, segments, merged profile ids)."""

    view: Literal["staff"] = "staff"
    customer_id: str
    version: int
    created_at: datetime
    updated_at: datetime
    pii: Literal["full", "masked"]
    residency: DataRegion = Field(description="the data region that keeps this customer's data")
    attributes: AttributesView
    identities: list[IdentityView]
    consent: dict[ConsentPurpose, ConsentState]
    tags: dict[str, TagState]
    points_balance: int
    orders: OrderAggregates
    behaviour: BehaviourAggregates
    timeline: list[TimelineEntry]
    merged_from: list[str] = Field(default_factory=list)
    scores: CustomerScores | None = None
    segments: list[str] = Field(default_factory=list)
    pending_verification: list[PendingContactView] = Field(
        default_factory=list, description="contact changes the customer has not verified yet"
    )


class CustomerSelfView(Output):
    """What a customer reads about themself: their attributes (PII in full, it is theirs),
    linked accounts, consent, points, orders and timeline. Staff tags, segments, scores,
    behaviour counters and the ids of merged profiles are internal and left out."""

    view: Literal["customer"] = "customer"
    customer_id: str
    version: int
    created_at: datetime
    updated_at: datetime
    attributes: AttributesView
    identities: list[IdentityView]
    consent: dict[ConsentPurpose, ConsentState]
    points_balance: int
    orders: OrderAggregates
    timeline: list[TimelineEntry]
    pending_verification: list[PendingContactView] = Field(
        default_factory=list,
        description="a phone or email change waiting for the customer to verify it",
    )


ProfileView = Annotated[Customer360 | CustomerSelfView, Field(discriminator="view")]


class MergeSuggestionView(Output):
    suggestion_id: str
    status: MergeSuggestionStatus
    reason: MergeReason
    customer_ids: list[str] = Field(
        description="the profiles; approving folds them all into the oldest"
    )
    identities: list[LinkingIdentity] = Field(description="what links the profiles")
    requested_by: str
    requested_at: datetime
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    survivor_id: str | None = Field(default=None, description="the profile kept, once approved")


class MergeSuggestionPage(Output):
    suggestions: list[MergeSuggestionView]
    next_token: str | None = None


class UpsertResult(Output):
    customer_id: str
    created: bool
    merged: list[str] = Field(
        default_factory=list, description="profiles folded into this one by the upsert"
    )
    merge_suggestion: MergeSuggestionView | None = Field(
        default=None,
        description=(
            "set (status 202) when the identities belong to several profiles and the caller "
            "may not merge: nothing was written, a manager decides; customer_id and profile "
            "are the oldest of them"
        ),
    )
    profile: ProfileView


class ConsentView(Output):
    customer_id: str
    consent: dict[ConsentPurpose, ConsentState]


class TagsView(Output):
    customer_id: str
    tags: dict[str, TagState]


class FindCustomers(StrictInput):
    """Look customers up without creating one. Criteria given together find the union of
    their matches; PII is compared by blind index, never stored or logged."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"type": kind}}}
                for name, kind in (
                    ("phone", "string"),
                    ("email", "string"),
                    ("identity", "object"),
                    ("order_id", "string"),
                )
            ]
        }
    )

    phone: PhoneInput | None = None
    email: EmailInput | None = None
    identity: Identity | None = Field(
        default=None, description="any channel's id: an app user id, an openid, a member card"
    )
    order_id: Key | None = Field(default=None, description="a placed or paid order's id")

    @model_validator(mode="after")
    def _some_criterion(self) -> FindCustomers:
        if all(getattr(self, name) is None for name in ("phone", "email", "identity", "order_id")):
            raise ValueError("give at least one of phone, email, identity or order_id")
        return self


SearchCriterion = Literal["phone", "email", "identity", "order_id"]


class CustomerMatch(Output):
    customer_id: str
    matched_by: list[SearchCriterion]
    profile: Customer360


class CustomerMatches(Output):
    matches: list[CustomerMatch] = Field(description="empty when nothing matches")
