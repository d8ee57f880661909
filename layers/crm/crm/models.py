"""Shared pydantic bases."""

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
)

FIRST_YEAR, LAST_YEAR = 1900, 2999
# A time as RFC 3339 writes it, with an offset, in the years 1900 to 2999: wide enough for any
# real customer event or decision, and far enough from datetime's years 1 and 9999 that
# converting to UTC never overflows (a 500 before). The document gives clients this pattern,
# and the API reads exactly what it matches, so the two cannot disagree.
TIME_PATTERN = (
    r"^(19|2[0-9])[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
_TIME = re.compile(TIME_PATTERN)
# The validation context of a request body (`crm.http.parse_body`): what a client sends is held
# to the document; what this code wrote itself (a queued event, in UTC, perhaps 1899-12-31 for
# 1900-01-01T00:00+08:00) is read back as written.
API_INPUT: dict[str, Any] = {"api_input": True}


def _rfc3339(value: Any, info: ValidationInfo) -> Any:
    if not isinstance(value, str) or not (info.context or {}).get("api_input"):
        return value
    if not _TIME.fullmatch(value):
        raise ValueError(
            f"a time is written 2026-11-20T12:00:00+08:00 (RFC 3339 with an offset), in the "
            f"years {FIRST_YEAR} to {LAST_YEAR}"
        )
    return datetime.fromisoformat(value)  # a ValueError for a day the month does not have


def _in_utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # year 1 at +01:00, year 9999 at -01:00: from code, not the API
        raise ValueError("the time cannot be given in UTC") from None


# Times arrive with any offset (+08:00 from a store in Shanghai) and are kept in UTC, so they
# sort and compare as strings in keys and read the same everywhere.
UtcDatetime = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339),
    AfterValidator(_in_utc),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": TIME_PATTERN,
            "description": f"RFC 3339 with an offset, in the years {FIRST_YEAR} to {LAST_YEAR}",
        }
    ),
]


def _integral_number(value: Any) -> Any:
    # JSON has numbers, not integers: JSON Schema's "integer" is any number without a
    # fraction, 10.0 included, and some clients' serialisers write every number that way.
    # Booleans and strings are still no integers (the strict parse refuses them).
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


INTEGRAL = BeforeValidator(_integral_number)
# An integer of a request body: a JSON number without a fraction (10 or 10.0). Bounds of an
# optional one go inside, before INTEGRAL (`Annotated[int, Field(ge=1), INTEGRAL] | None`):
# put on the union, pydantic writes them into the document as "ge", which no client reads.
Integer = Annotated[int, INTEGRAL]


# What `str_strip_whitespace` strips: Unicode's White_Space (pydantic-core trims with Rust's
# str::trim). Not JSON Schema's \s (ECMA-262's: U+FEFF but not U+0085) nor Python's (which
# adds U+001C-U+001F): a text that must hold more than spaces says so with this class.
WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
NOT_BLANK = f"[^{WHITE_SPACE}]"  # a pattern: some character is not white space

# A product category, as shops name them (母婴, 家居, Home & Garden): one definition for every
# event, request body and query parameter that takes one, so that a category an order event
# carries can be asked for everywhere. Any script, 1 to 64 characters once trimmed, first and
# last not white space, no control characters (they would corrupt keys, logs and CSV exports).
CATEGORY_MAX = 64
_CONTROL = r"\x00-\x1f\x7f"
_EDGE = f"[^{_CONTROL}{WHITE_SPACE}]"  # a category's first and last character
# A body's category is trimmed before it is checked: the pattern allows the white space around.
CATEGORY_PATTERN = rf"^[{WHITE_SPACE}]*{_EDGE}([^{_CONTROL}]*{_EDGE})?[{WHITE_SPACE}]*$"
# A query parameter is taken as given (a category with spaces around is another text), and its
# pattern says the length too (a query parameter has no maxLength in the document).
CATEGORY_QUERY_PATTERN = rf"^{_EDGE}([^{_CONTROL}]{{0,{CATEGORY_MAX - 2}}}{_EDGE})?$"
_CATEGORY_QUERY = re.compile(CATEGORY_QUERY_PATTERN)


def _category_length(value: Any) -> Any:
    """The document's maxLength counts the text as sent, spaces around included: so does the
    API, before it trims (a padded text the document refuses is never accepted)."""
    if isinstance(value, str) and len(value) > CATEGORY_MAX:
        raise ValueError(f"a category is at most {CATEGORY_MAX} characters")
    return value


Category = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=CATEGORY_MAX, pattern=CATEGORY_PATTERN
    ),
    BeforeValidator(_category_length),  # after the constraints: it runs before them
]


def category_of(value: str) -> str | None:
    """A query parameter's category, or None when it is not one as `Category` reads them:
    routes that take a category in the query check it as bodies do."""
    return value if _CATEGORY_QUERY.fullmatch(value) else None


class StrictInput(BaseModel):
    """Request bodies: unknown fields are an error, and strings are trimmed.

    The API validates them from JSON in strict mode (`crm.http.parse_body`): integers and
    booleans must be JSON numbers and booleans, never strings or each other (an integer field
    is declared `Integer`, which takes 10.0 as JSON Schema does); times, dates, enums and money
    come as strings, and money may also come as a JSON number. Code that builds these models
    from Python values (stored definitions, tests) stays lax."""

    # defer_build: a model's validator is built when first used, not at import, so a cold start
    # pays only for the shapes its first request touches.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)


class Output(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)


class Record(BaseModel):
    """Stored shapes (items, queued messages). Like the API's models, their validators are built
    on first use (`defer_build`), so a function pays at cold start only for the shapes it reads."""

    model_config = ConfigDict(defer_build=True)
