"""The customer profile's API: what clients send to create or find a customer, what the 360°
view returns. The shapes a stored profile is made of are defined in
`crm.profiles.record_models` (all the event folder loads) and re-exported here for the API's
modules; what changes a profile (edits, consent, tags, points, merges) is in
`crm.profiles.change_models`, which a request that creates or reads a customer never loads."""

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal, Self

from pydantic import ConfigDict, Field, model_validator

from crm.config import DataRegion
from crm.models import Output, StrictInput
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
    "ConsentPurpose",
    "ConsentState",
    "ContactField",
    "Customer360",
    "CustomerMatch",
    "CustomerMatches",
    "CustomerScores",
    "CustomerSelfView",
    "Email",
    "EmailInput",
    "ExternalId",
    "FindCustomers",
    "Identity",
    "IdentityView",
    "Key",
    "LinkingIdentity",
    "MergeReason",
    "MergeSuggestionStatus",
    "MergeSuggestionView",
    "OrderAggregates",
    "PendingContactView",
    "Phone",
    "PhoneInput",
    "ProfileAttributes",
    "ProfileView",
    "SearchCriterion",
    "ShortText",
    "TagKind",
    "TagState",
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
    merged_from: list[str] = Field(default=[])
    scores: CustomerScores | None = None
    segments: list[str] = Field(default=[])
    pending_verification: list[PendingContactView] = Field(
        default=[], description="contact changes the customer has not verified yet"
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
        default=[],
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


class UpsertResult(Output):
    customer_id: str
    created: bool
    merged: list[str] = Field(default=[], description="profiles folded into this one by the upsert")
    merge_suggestion: MergeSuggestionView | None = Field(
        default=None,
        description=(
            "set (status 202) when the identities belong to several profiles and the caller "
            "may not merge: nothing was written, a manager decides; customer_id and profile "
            "are the oldest of them"
        ),
    )
    profile: ProfileView


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
    def _some_criterion(self) -> Self:
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
