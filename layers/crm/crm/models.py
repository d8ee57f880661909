"""Shared pydantic bases."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict

# Times arrive with any offset (+08:00 from a store in Shanghai) and are kept in UTC, so they
# sort and compare as strings in keys and read the same everywhere.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(lambda moment: moment.astimezone(UTC))]


class StrictInput(BaseModel):
    """Request bodies: unknown fields are an error, and strings are trimmed.

    The API validates them from JSON in strict mode (`crm.http.parse_body`): integers and
    booleans must be JSON integers and booleans, never strings or each other; times, dates,
    enums and money come as strings, and money may also come as a JSON number. Code that
    builds these models from Python values (stored definitions, tests) stays lax."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Output(BaseModel):
    model_config = ConfigDict(frozen=True)
