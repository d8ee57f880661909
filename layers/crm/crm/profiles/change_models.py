"""What clients send to change a profile (an edit, consent, tags, points, a merge) and what
those requests answer. Apart from `crm.profiles.models` because a customer's creation or read,
the API's most frequent first requests, needs none of them (docs/architecture.md, "Cold
starts")."""

from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from crm.models import NOT_BLANK, Integer, Output, StrictInput, UtcDatetime
from crm.profiles.models import (
    MAX_TAGS,
    Channel,
    ConsentPurpose,
    ConsentState,
    Key,
    MergeSuggestionView,
    ProfileAttributes,
    TagKind,
    TagState,
)

__all__ = [
    "ConsentChange",
    "ConsentView",
    "EditProfile",
    "MergeCustomers",
    "MergeSuggestionPage",
    "PointsChange",
    "PointsEntry",
    "PointsView",
    "TagChange",
    "TagInput",
    "TagName",
    "TagsView",
]


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
    """Tags removed, then tags added: a tag in both lists is kept (re-added, by this caller)."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["add"], "properties": {"add": {"minItems": 1}}},
                {"required": ["remove"], "properties": {"remove": {"minItems": 1}}},
            ]
        }
    )

    add: list[TagInput] = Field(default=[], max_length=MAX_TAGS)
    remove: list[TagName] = Field(default=[], max_length=MAX_TAGS)

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
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


class MergeSuggestionPage(Output):
    suggestions: list[MergeSuggestionView]
    next_token: str | None = None


class ConsentView(Output):
    customer_id: str
    consent: dict[ConsentPurpose, ConsentState]


class TagsView(Output):
    customer_id: str
    tags: dict[str, TagState]
