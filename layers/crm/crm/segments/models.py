"""Segment family models: rule definitions (a typed grammar over the field catalogue), run
summaries, members, recommendations."""

import difflib
import json
import re
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal, Self, cast

from pydantic import (
    ConfigDict,
    Field,
    JsonValue,
    SerializerFunctionWrapHandler,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_serializer,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict  # pydantic needs this one on Python 3.11

from crm.models import INTEGRAL, NOT_BLANK, WHITE_SPACE, Output, StrictInput
from crm.profiles import EVENT_TYPES
from crm.segments.fields import (
    DECIMAL_PLACES,
    FIELDS,
    KIND_PHRASES,
    NUMERIC_KINDS,
    OPS_BY_KIND,
    FieldKind,
    RuleField,
    exact_decimal,
)

RULE_SEGMENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{1,47}$")
# Names the API's own paths use under /segments/: a segment may not take them.
RESERVED_NAMES = frozenset({"runs"})
SegmentName = Annotated[
    str,
    StringConstraints(pattern=RULE_SEGMENT_NAME.pattern),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": RULE_SEGMENT_NAME.pattern,
            "not": {"enum": sorted(RESERVED_NAMES)},
        }
    ),
]

MAX_CONDITIONS = 20
MAX_TEXT = 100
MAX_CHOICES = 100
MAX_NO_EVENT_DAYS = 3650

Op = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "contains"]
ConditionValue = Annotated[
    bool | int | Decimal | str | list[str] | None,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number"},
                {"type": "string"},
                {"type": "boolean"},
                {"type": "array", "items": {"type": "string"}},
                {"type": "null"},
            ],
            "description": "a number for number, money, count and days fields; text for text "
            "fields and for contains; a list of text for in; true or false for flags",
        }
    ),
]


def _names(names: Iterable[str]) -> list[JsonValue]:
    return [*sorted(names)]


def _problem(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(f"rule_{kind}", message)


def _checked_number(spec: RuleField, raw: object) -> int | Decimal:
    number = exact_decimal(raw)
    if number is None:
        raise _problem("value", f"{spec.name} is {_a(spec.kind)}: the value must be a number")
    low, high = spec.bounds
    if not low <= number <= high:
        raise _problem("value", f"{spec.name} takes values from {low} to {high}")
    places = DECIMAL_PLACES[spec.kind]
    exponent = number.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        what = "a whole number" if places == 0 else f"at most {places} decimal places"
        raise _problem("value", f"{spec.name} is {_a(spec.kind)}: the value takes {what}")
    return int(number) if spec.kind is FieldKind.COUNT else number


def _checked_text(spec: RuleField, raw: object) -> str:
    # At most MAX_TEXT as sent, and not only spaces: what the document's schema can say.
    if not isinstance(raw, str) or not raw.strip(WHITE_SPACE) or len(raw) > MAX_TEXT:
        raise _problem("value", f"compare {spec.name} with a text of 1 to {MAX_TEXT} characters")
    text = raw.strip(WHITE_SPACE)
    if spec.choices and text not in spec.choices:
        raise _problem("value", f"{spec.name} is one of: {', '.join(spec.choices)}")
    return text


def _checked_value(spec: RuleField, op: str, raw: object) -> object:
    if op == "in":
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_CHOICES:
            raise _problem("value", f"in takes a list of 1 to {MAX_CHOICES} texts")
        return [_checked_text(spec, item) for item in raw]
    if spec.kind in NUMERIC_KINDS:
        return _checked_number(spec, raw)
    if spec.kind is FieldKind.FLAG:
        if not isinstance(raw, bool):
            raise _problem("value", f"{spec.name} is a flag: the value is true or false")
        return raw
    return _checked_text(spec, raw)


def _a(kind: FieldKind) -> str:
    return KIND_PHRASES[kind]


def _op_hint(kind: FieldKind) -> str:
    return " or ".join(OPS_BY_KIND[kind])


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


_NULL: dict[str, JsonValue] = {"type": "null"}
_TEXT: dict[str, JsonValue] = {
    "type": "string", "minLength": 1, "maxLength": MAX_TEXT, "pattern": NOT_BLANK
}  # fmt: skip


def _value_schema(spec: RuleField) -> dict[str, JsonValue]:
    if spec.kind is FieldKind.FLAG:
        return {"type": "boolean"}
    if spec.kind in NUMERIC_KINDS:
        low, high = spec.bounds
        schema: dict[str, JsonValue] = {"minimum": _number(low), "maximum": _number(high)}
        places = DECIMAL_PLACES[spec.kind]
        if places == 0:
            return {"type": "integer", **schema}
        return {"type": "number", **schema, "multipleOf": float(Decimal(1).scaleb(-places))}
    if spec.choices:
        return {"enum": [*spec.choices]}
    return dict(_TEXT)


def _comparison(fields: list[str], ops: Iterable[str], value: JsonValue) -> JsonValue:
    return {
        "required": ["field", "op", "value"],
        "properties": {
            "field": {"enum": [*fields]}, "op": {"enum": [*ops]}, "value": value,
            "has_tag": _NULL, "no_event": _NULL, "days": _NULL,
        },
    }  # fmt: skip


def _condition_forms(schema: dict[str, JsonValue]) -> None:
    """What `Condition`'s validators accept, as JSON Schema: one of the three forms, and in a
    comparison the operators and values the field's kind takes (fields that take the same
    are one branch)."""
    by_value: dict[tuple[str, str], list[str]] = {}
    for spec in FIELDS.values():
        key = (spec.kind.value, json.dumps(_value_schema(spec), sort_keys=True))
        by_value.setdefault(key, []).append(spec.name)
    forms: list[JsonValue] = []
    for (kind, value), names in by_value.items():
        ops = OPS_BY_KIND[FieldKind(kind)]
        single = json.loads(value)
        forms.append(_comparison(names, [op for op in ops if op != "in"], single))
        if "in" in ops:
            choices = {"type": "array", "minItems": 1, "maxItems": MAX_CHOICES, "items": single}
            forms.append(_comparison(names, ["in"], choices))
    forms.append(
        {
            "required": ["has_tag"],
            "properties": {
                "has_tag": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 64,
                    "pattern": NOT_BLANK,
                },
                "field": _NULL,
                "op": _NULL,
                "value": _NULL,
                "no_event": _NULL,
                "days": _NULL,
            },
        }
    )
    forms.append(
        {
            "required": ["no_event", "days"],
            "properties": {
                "no_event": {"enum": _names(EVENT_TYPES)},
                "days": {"type": "integer", "minimum": 1, "maximum": MAX_NO_EVENT_DAYS},
                "field": _NULL,
                "op": _NULL,
                "value": _NULL,
                "has_tag": _NULL,
            },
        }
    )
    schema["oneOf"] = forms


class ConditionJson(TypedDict, total=False):
    field: str
    op: str
    value: bool | int | float | str | list[str]
    has_tag: str
    no_event: str
    days: int


class Condition(StrictInput):
    """One condition of a rule, in one of three forms:
    `{"field": ..., "op": ..., "value": ...}` compares a profile field of the catalogue;
    `{"has_tag": "vip"}` holds when the profile carries the tag;
    `{"no_event": "order_paid", "days": 30}` holds when no event of that type came in the
    last `days` days. A customer without a value (no city, not scored yet, no order yet)
    meets no comparison on it."""

    model_config = ConfigDict(json_schema_extra=_condition_forms)

    field: str | None = Field(default=None, description="a field of the catalogue")
    op: Op | None = Field(
        default=None,
        description="gt, gte, lt, lte for number, money, count and days fields; eq and ne "
        "for all but lists; in (a list of texts) for text fields; contains for list fields",
    )
    value: ConditionValue = None
    has_tag: (
        Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=NOT_BLANK)] | None
    ) = None
    no_event: str | None = Field(default=None, description="an event type")
    days: Annotated[int, Field(ge=1, le=MAX_NO_EVENT_DAYS), INTEGRAL] | None = None

    @field_validator("field")
    @classmethod
    def _known_field(cls, name: str | None) -> str | None:
        if name is None or name in FIELDS:
            return name
        close = difflib.get_close_matches(name, FIELDS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise _problem("field", f"not a field a rule can name{hint}: see the catalogue")

    @field_validator("op")
    @classmethod
    def _op_fits_field(cls, op: str | None, info: ValidationInfo) -> str | None:
        spec = FIELDS.get(info.data.get("field") or "")
        if op is None or spec is None or op in OPS_BY_KIND[spec.kind]:
            return op
        raise _problem(
            "op",
            f"op {op} does not apply to {spec.name} ({_a(spec.kind)}): use {_op_hint(spec.kind)}",
        )

    @field_validator("value", mode="before")
    @classmethod
    def _value_fits_field(cls, raw: object, info: ValidationInfo) -> object:
        spec = FIELDS.get(info.data.get("field") or "")
        op = info.data.get("op")
        if raw is None or spec is None or op is None:
            return raw  # the form is checked once every key is read
        return _checked_value(spec, op, raw)

    @field_validator("no_event")
    @classmethod
    def _known_event(cls, event_type: str | None) -> str | None:
        if event_type is None or event_type in EVENT_TYPES:
            return event_type
        raise _problem("no_event", f"no_event is one of: {', '.join(sorted(EVENT_TYPES))}")

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        forms = [self.field is not None, self.has_tag is not None, self.no_event is not None]
        compare = {"op": self.op, "value": self.value}
        if sum(forms) != 1:
            raise _problem("form", "a condition has field, op and value; or has_tag; or "
                                   "no_event and days")  # fmt: skip
        if self.field is not None:
            missing = [k for k, v in compare.items() if v is None]
            if missing or self.days is not None:
                raise _problem("form", f"a condition on {self.field} needs op and value only")
        elif self.has_tag is not None:
            if any(v is not None for v in compare.values()) or self.days is not None:
                raise _problem("form", "a has_tag condition takes nothing else")
        elif self.days is None or any(v is not None for v in compare.values()):
            raise _problem(
                "form",
                f"a no_event condition takes days (1 to {MAX_NO_EVENT_DAYS}) and nothing else",
            )
        return self

    @property
    def spec(self) -> RuleField | None:
        return None if self.field is None else FIELDS[self.field]

    @field_serializer("value")
    def _value_as_json(self, value: object) -> bool | int | float | str | list[str] | None:
        # A JSON number, not Decimal's string: every value the grammar admits has at most 15
        # significant digits, so the float reads back exactly.
        if isinstance(value, Decimal):
            return int(value) if value == value.to_integral_value() else float(value)
        return cast(bool | int | str | list[str] | None, value)

    @model_serializer(mode="wrap")
    def _present_keys_only(self, handler: SerializerFunctionWrapHandler) -> ConditionJson:
        return cast(ConditionJson, {k: v for k, v in handler(self).items() if v is not None})


class Rule(StrictInput):
    """Who is in: every condition of `all` holds, and at least one of `any` (when given)."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["all"], "properties": {"all": {"minItems": 1}}},
                {"required": ["any"], "properties": {"any": {"minItems": 1}}},
            ]
        }
    )

    all: list[Condition] = Field(default=[], max_length=MAX_CONDITIONS)
    any: list[Condition] = Field(default=[], max_length=MAX_CONDITIONS)

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.all and not self.any:
            raise _problem("empty", "a rule needs at least one condition in all or any")
        return self


class SegmentDefinition(StrictInput):
    name: SegmentName
    description: Annotated[str, StringConstraints(max_length=300)] = ""
    rule: Rule
    paused: bool | None = Field(
        default=None,
        description="a paused segment keeps its members as they are and is not evaluated; "
        "when left out, a replaced definition keeps its state and a new one is active",
    )

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name in RESERVED_NAMES:
            raise _problem("name", f"{name} is a name this API uses: choose another")
        return name


class SegmentPause(StrictInput):
    paused: bool = Field(description="true: freeze the members and stop evaluating; false: resume")


class StoredDefinition(Output):
    name: str
    description: str
    rule: Rule
    paused: bool = False
    updated_at: datetime
    updated_by: str
    created_at: datetime | None = Field(
        default=None,
        description="when the segment was first defined (absent for segments defined before "
        "this was kept); its sizes are those of the runs that finished after",
    )


class SegmentDefined(StoredDefinition):
    """A definition as stored, and whether its members are being filled."""

    status: Literal["filling", "unchanged", "paused", "waiting"] = Field(
        description="filling: a segment run evaluating the rule over the whole base was started "
        "(follow it at GET /segments/runs/{run_id}; members enter as its shards finish); "
        "unchanged: the rule is the one stored (and it was not paused), its members stay; "
        "paused: a paused segment is not filled; waiting: the run could not be started now, "
        "the next run fills it"
    )
    run_id: str | None = Field(description="the run filling the segment, when one was started")
    created: bool = Field(
        description="true (and 201) when this request defined it; false (and 200) when it "
        "replaced a stored one"
    )


class SegmentSize(Output):
    run_id: str
    finished_at: datetime | None
    size: int


class SegmentSummary(Output):
    name: str
    kind: Literal["tier", "rfm", "rule"]
    label: str
    size: int | None = Field(
        description="members at the latest complete run; a rule segment's at the latest that "
        "finished after it was created (null until one has)"
    )
    trend: list[SegmentSize] = Field(
        description="sizes at the recent runs, oldest first (a rule segment's: only runs that "
        "finished after it was created)"
    )
    paused: bool = False


class SegmentDetail(Output):
    name: str
    kind: Literal["tier", "rfm", "rule"]
    label: str
    size: int | None = Field(
        description="members at the latest complete run; a rule segment's at the latest that "
        "finished after it was created (null until one has)"
    )
    trend: list[SegmentSize] = Field(
        description="sizes at the recent runs, oldest first (a rule segment's: only runs that "
        "finished after it was created)"
    )
    paused: bool = Field(description="a paused rule segment keeps its members as they are")
    definition: StoredDefinition | None = Field(
        default=None, description="the rule, for a rule segment this version can read"
    )
    problem: str | None = Field(
        default=None,
        description="why a stored rule cannot be evaluated (its members stay as they are "
        "until it is redefined or deleted)",
    )


class SegmentPauseResult(SegmentDetail):
    """A rule segment after a pause or a resume, and whether its members are being filled."""

    status: Literal["paused", "filling", "waiting", "active"] = Field(
        description="paused: its members stay as they are, nobody enters or leaves; filling: "
        "resumed, and a segment run evaluating the rule over the whole base was started (the "
        "changes made while it was paused reach its members as the run's shards finish: "
        "follow it at GET /segments/runs/{run_id}); waiting: resumed, but the run could not "
        "be started now, the next run fills it; active: it was not paused, nothing changed"
    )
    run_id: str | None = Field(description="the run filling the resumed segment, if one started")


class SegmentDeleted(Output):
    name: str
    deleted: bool = True
    detail: str


class RunProgress(Output):
    shards_total: int = Field(description="0 until the planner has queued the shards")
    shards_done: int
    profiles_scored: int
    profiles_written: int = Field(description="profiles whose scores or segments changed")
    attempts_retried: int = Field(description="failed shard attempts that were tried again")


class SegmentRun(Output):
    run_id: str
    status: Literal["planned", "running", "complete", "failed"] = Field(
        description="planned: sampling and fitting; running: shards queued; complete and "
        "failed are final"
    )
    started_at: datetime
    finished_at: datetime | None
    last_progress_at: datetime | None = Field(description="shards queued or last shard done")
    deadline_at: datetime | None = Field(description="failed by the watchdog if not done by")
    progress: RunProgress
    error: str | None = Field(description="why it failed: the shard and the kind of error")
    notice: str | None = Field(
        default=None,
        description="what operators should know about the run, e.g. that it kept tiers and RFM "
        "cells in the legacy layout because a member index is not ACTIVE yet",
    )


class SegmentList(Output):
    latest_run: str | None = Field(description="the latest complete run, whose sizes these are")
    current_run: SegmentRun | None = Field(
        default=None, description="the newest run, when it is not the latest complete one"
    )
    segments: list[SegmentSummary]


class SegmentMembers(Output):
    name: str
    customer_ids: list[str]
    next_token: str | None = None


class RunRequested(Output):
    requested: bool = Field(
        default=True,
        description="false when a run was under way already: run_id is that run, no second "
        "one is started over its writes",
    )
    run_id: str
    detail: str


class Recommendation(Output):
    product: str
    category: str
    lift: float | None = None
    confidence: float | None = None
    because_of: str | None = None
    reason: str


class Recommendations(Output):
    customer_id: str
    run_id: str | None
    recommendations: list[Recommendation]
