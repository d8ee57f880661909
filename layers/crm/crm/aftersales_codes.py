"""The after-sales vocabulary: one list of reasons and one mapping of case kinds, shared by the
after-sales event (POST /events, `reason_code`, `case`), after-sales cases (POST /aftersales,
`reason`, `kind`), product feedback and the analytics charts (docs/tickets.md).

The event and the API kept their own spellings, because both are stored and documented: the
event says `refund_only` (仅退款) where a case says `refund`. Each accepts the other's spelling
on input and stores its own, mapped here and nowhere else. Reasons are one list for both; an
event's free reason code becomes the code it stands for (`damaged` is `damaged_in_transit`), or
`other`, so that reasons aggregate by SKU and chart under names the dashboard knows."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ReturnReason(StrEnum):
    """Why the customer wants after-sales service: a code, so that reasons aggregate by SKU."""

    SIZE_TOO_SMALL = "size_too_small"
    SIZE_TOO_LARGE = "size_too_large"
    DEFECTIVE = "defective"
    NOT_AS_DESCRIBED = "not_as_described"
    DAMAGED_IN_TRANSIT = "damaged_in_transit"
    WRONG_ITEM = "wrong_item"
    MISSING_PARTS = "missing_parts"
    LATE_DELIVERY = "late_delivery"
    CHANGED_MIND = "changed_mind"
    OTHER = "other"


# The short codes upstream systems (and this project's own README and demo, before) send for
# a reason of the list. A code that could mean two of them (`size`: too small or too large?)
# is not guessed at: it is `other`.
REASON_ALIASES: dict[str, ReturnReason] = {
    "damaged": ReturnReason.DAMAGED_IN_TRANSIT,
    "broken": ReturnReason.DAMAGED_IN_TRANSIT,
    "quality": ReturnReason.DEFECTIVE,
    "faulty": ReturnReason.DEFECTIVE,
    "late": ReturnReason.LATE_DELIVERY,
    "wrong": ReturnReason.WRONG_ITEM,
    "missing": ReturnReason.MISSING_PARTS,
    "not_wanted": ReturnReason.CHANGED_MIND,
}


def reason_of(code: str) -> ReturnReason:
    """The reason an event's code stands for: itself when it is one, its alias, else other."""
    code = code.strip().lower()
    if code in ReturnReason.__members__.values():
        return ReturnReason(code)
    return REASON_ALIASES.get(code, ReturnReason.OTHER)


def reason_sql(column: str) -> str:
    """`reason_of` in SQL, for rows the lake holds from before event codes were mapped."""
    known = ", ".join(f"'{r.value}'" for r in ReturnReason)
    aliases = " ".join(f"WHEN '{a}' THEN '{r.value}'" for a, r in sorted(REASON_ALIASES.items()))
    lowered = f"lower(trim({column}))"
    return (
        f"CASE WHEN {lowered} IN ({known}) THEN {lowered} "
        f"ELSE CASE {lowered} {aliases} ELSE 'other' END END"
    )


# An after-sales event's case and a case's kind, each in the other's spelling.
EVENT_CASE_OF_KIND = {"refund": "refund_only"}
KIND_OF_EVENT_CASE = {"refund_only": "refund"}


def event_case(value: Any) -> Any:
    """An event's `case` as events store it (`refund` is `refund_only`)."""
    return EVENT_CASE_OF_KIND.get(value, value) if isinstance(value, str) else value


def case_kind(value: Any) -> Any:
    """A case request's `kind` as cases store it (`refund_only` is `refund`)."""
    return KIND_OF_EVENT_CASE.get(value, value) if isinstance(value, str) else value
