"""A country's public holidays and make-up working days, from the `holidays` package: what the
calendars count (`calendars`) and what a calendar definition may name (`models`), one lookup
for both, apart from either so that neither imports the other."""

from __future__ import annotations

from datetime import date
from functools import lru_cache


@lru_cache(maxsize=512)
def country_days(
    country: str, subdivision: str | None, year: int
) -> tuple[frozenset[date], frozenset[date]]:
    """A country's (or subdivision's) public holidays of a year and its make-up working days
    (weekend days worked). NotImplementedError: the package does not know the country or the
    subdivision."""
    import holidays  # imported on first use: only the SLA clock and its calendars need it

    days = holidays.country_holidays(country, subdiv=subdivision, years=year)
    return frozenset(days), frozenset(getattr(days, "weekend_workdays", ()))
