"""The counter a final outcome adds beside its status: dispatch's own reason tokens only, so a
counter's name never carries free text (a provider's message, a template's error)."""

from __future__ import annotations

from crm.campaigns.models import reason_counter


def test_suppressions_and_caps_are_counted_by_their_reason() -> None:
    assert reason_counter("suppressed", "no_address") == "suppressed.no_address"
    assert reason_counter("suppressed", "no_consent") == "suppressed.no_consent"
    assert reason_counter("capped", "quiet_hours_past_max_defer") == (
        "capped.quiet_hours_past_max_defer"
    )


def test_other_statuses_have_no_reason_counter() -> None:
    for status in ("sent", "deferred", "failed"):
        assert reason_counter(status, "quiet_hours") is None


def test_a_reason_that_is_no_token_is_counted_as_other() -> None:
    assert reason_counter("suppressed", None) == "suppressed.other"
    assert reason_counter("capped", "Daily cap!") == "capped.other"
    assert reason_counter("suppressed", "x" * 49) == "suppressed.other"
