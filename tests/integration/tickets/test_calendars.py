"""Shop calendars through the API (handler, service, TicketsTable on moto): defined by a
manager, chosen by the SLA policies, copied onto the tickets that open under them, so editing
or deleting a calendar never moves an open ticket's deadlines."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from crm.tickets.calendar_store import CalendarStore, StoredCalendar
from tests.integration.tickets.conftest import Desk

BERLIN: dict[str, Any] = {
    "time_zone": "Europe/Berlin",
    "hours": {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": {"country": "DE"},
}
MANAGER = "support_manager"
CUSTOMERS = itertools.count()


def put_calendar(desk: Desk, name: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = desk.suite.call("PUT", f"/tickets/calendars/{name}", body, role=MANAGER)
    assert reply.status == 200, reply.body
    got: dict[str, Any] = reply.body
    return got


def use_calendar(desk: Desk, name: str, first_response: int = 60) -> dict[str, Any]:
    """Policies counting every priority's first response in one calendar."""
    policies = {"default": {"first_response": first_response},
                "calendars": dict.fromkeys(("low", "normal", "high", "urgent"), name)}  # fmt: skip
    reply = desk.suite.call("PUT", "/tickets/sla-policies", policies, role=MANAGER)
    assert reply.status == 200, reply.body
    got: dict[str, Any] = reply.body
    return got


def first_due(desk: Desk, ticket: dict[str, Any]) -> str:
    due = next(d for d in ticket["deadlines"] if d["metric"] == "first_response")
    return str(due["due_at"])


def opened_at(desk: Desk, when: datetime) -> dict[str, Any]:
    desk.clock.now = when.astimezone(UTC)
    cid = desk.customer(f"u-{next(CUSTOMERS)}")
    reply = desk.open(cid, "where is my parcel")
    assert reply.status == 201, reply.body
    body: dict[str, Any] = reply.body
    return body


def test_a_berlin_calendar_counts_german_business_hours(desk: Desk) -> None:
    saved = put_calendar(desk, "berlin", {**BERLIN, "closed_dates": ["2026-12-07"],
                                          "extra_working_dates": ["2026-12-12"]})  # fmt: skip
    assert (saved["version"], saved["built_in"]) == ("berlin@v1", False)
    use_calendar(desk, "berlin")
    # Friday 27 November, 16:30 in Berlin (+01:00): half an hour today, half on Monday.
    ticket = opened_at(desk, datetime(2026, 11, 27, 15, 30, tzinfo=UTC))
    assert ticket["calendar"] == "berlin@v1"
    assert first_due(desk, ticket) == "2026-11-30T08:30:00Z"  # Monday 09:30 in Berlin
    # Friday 23 October, 16:30 (+02:00); daylight saving ends on Sunday 25 October, so Monday
    # 09:30 is 08:30 UTC, not 07:30.
    ticket = opened_at(desk, datetime(2026, 10, 23, 14, 30, tzinfo=UTC))
    assert first_due(desk, ticket) == "2026-10-26T08:30:00Z"
    # Thursday 2 October 2025, 16:30: German Unity Day (Friday 3 October) is closed.
    ticket = opened_at(desk, datetime(2025, 10, 2, 14, 30, tzinfo=UTC))
    assert first_due(desk, ticket) == "2025-10-06T07:30:00Z"
    # Friday 4 December: the shop's closed Monday 7 December is skipped.
    ticket = opened_at(desk, datetime(2026, 12, 4, 15, 30, tzinfo=UTC))
    assert first_due(desk, ticket) == "2026-12-08T08:30:00Z"
    # Friday 11 December: Saturday 12 December is worked (Monday's hours).
    ticket = opened_at(desk, datetime(2026, 12, 11, 15, 30, tzinfo=UTC))
    assert first_due(desk, ticket) == "2026-12-12T08:30:00Z"
    # The deadline read back is the one computed at opening, and the breach fires on it.
    assert first_due(desk, desk.ticket(ticket["ticket_id"])) == "2026-12-12T08:30:00Z"
    desk.travel(hours=17, minutes=1)
    assert desk.deadline(ticket["ticket_id"], "first_response")["state"] == "breached"
    assert "TicketSlaBreached" in [e["detail-type"] for e in desk.events()]


def test_a_us_calendar_skips_thanksgiving_and_a_saturday_period_counts(desk: Desk) -> None:
    put_calendar(desk, "new-york", {
        "time_zone": "America/New_York", "holidays": {"country": "US"},
        "hours": {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
    })  # fmt: skip
    use_calendar(desk, "new-york")
    # Wednesday 25 November 2026, 16:30 in New York (-05:00); Thanksgiving on Thursday.
    ticket = opened_at(desk, datetime(2026, 11, 25, 21, 30, tzinfo=UTC))
    assert first_due(desk, ticket) == "2026-11-27T14:30:00Z"  # Friday 09:30
    put_calendar(desk, "singapore", {
        "time_zone": "Asia/Singapore",
        "hours": {**{d: ["09:00-12:00", "13:00-18:00"] for d in ("mon", "tue", "wed", "thu",
                                                                  "fri")},
                  "sat": ["10:00-14:00"]},
    })  # fmt: skip
    use_calendar(desk, "singapore")
    # Friday 27 November, 17:30 in Singapore (+08:00): half an hour, then Saturday from 10:00.
    ticket = opened_at(desk, datetime(2026, 11, 27, 9, 30, tzinfo=UTC))
    assert ticket["calendar"] == "singapore@v1"
    assert first_due(desk, ticket) == "2026-11-28T02:30:00Z"  # Saturday 10:30
    # Saturday 13:30: half an hour, then Monday from 09:00.
    ticket = opened_at(desk, datetime(2026, 11, 28, 5, 30, tzinfo=UTC))
    assert first_due(desk, ticket) == "2026-11-30T01:30:00Z"


def test_editing_a_calendar_leaves_open_tickets_on_the_version_they_copied(desk: Desk) -> None:
    put_calendar(desk, "berlin", BERLIN)
    use_calendar(desk, "berlin")
    before = opened_at(desk, datetime(2026, 11, 27, 15, 30, tzinfo=UTC))  # Friday 16:30
    longer = {**BERLIN, "hours": {**BERLIN["hours"], "fri": ["09:00-19:00"]}}
    assert put_calendar(desk, "berlin", longer)["version"] == "berlin@v2"
    kept = desk.ticket(before["ticket_id"])
    assert kept["calendar"] == "berlin@v1"
    assert first_due(desk, kept) == "2026-11-30T08:30:00Z"  # still Monday 09:30
    after = opened_at(desk, datetime(2026, 11, 27, 15, 30, tzinfo=UTC))
    assert after["calendar"] == "berlin@v2"
    assert first_due(desk, after) == "2026-11-27T16:30:00Z"  # Friday 17:30
    # Deleting it (after the policies moved off it) leaves the open tickets counting too.
    desk.suite.call("PUT", "/tickets/sla-policies", {"default": {"first_response": 60}},
                    role=MANAGER)  # fmt: skip
    gone = desk.suite.call("DELETE", "/tickets/calendars/berlin", role=MANAGER)
    assert gone.status == 200, gone.body
    assert desk.suite.call("GET", "/tickets/calendars/berlin", role=MANAGER).status == 404
    assert first_due(desk, desk.ticket(after["ticket_id"])) == "2026-11-27T16:30:00Z"
    # Made again, it goes on counting versions: berlin@v2 never names two definitions.
    assert put_calendar(desk, "berlin", BERLIN)["version"] == "berlin@v4"


def test_tickets_pinned_to_a_built_in_name_and_the_lists(desk: Desk) -> None:
    ticket = opened_at(desk, datetime(2026, 11, 27, 12, 45, tzinfo=UTC))  # Friday 20:45 Shanghai
    assert ticket["calendar"] == "business_hours"
    # Stored exactly as tickets were before shop calendars: the bare name, no definition.
    item = boto3.client("dynamodb").get_item(
        TableName=str(desk.suite.stack.refs["TicketsTable"]),
        Key={"PK": {"S": f"TICKET#{ticket['ticket_id']}"}, "SK": {"S": "#TICKET"}},
    )["Item"]
    assert item["calendar"] == {"S": "business_hours"}
    assert "calendar_definition" not in item
    assert first_due(desk, desk.ticket(ticket["ticket_id"])) == "2026-11-30T01:15:00Z"
    put_calendar(desk, "berlin", BERLIN)
    listed = desk.suite.call("GET", "/tickets/calendars", role="support_agent")
    assert listed.status == 200, listed.body
    names = {c["name"]: c for c in listed.body["calendars"]}
    assert set(names) == {"business_hours", "24x7", "berlin"}
    assert names["business_hours"]["built_in"] is True
    assert names["business_hours"]["definition"]["hours"]["mon"] == ["09:00-12:00",
                                                                      "13:30-21:00"]  # fmt: skip
    assert names["business_hours"]["definition"]["holidays"] == {"country": "CN",
                                                                 "subdivision": None}  # fmt: skip
    assert names["berlin"]["definition"]["time_zone"] == "Europe/Berlin"
    one = desk.suite.call("GET", "/tickets/calendars/24x7", role="support_agent")
    assert one.body["definition"]["hours"]["sun"] == ["00:00-24:00"]
    policies = desk.suite.call("GET", "/tickets/sla-policies", role="support_agent")
    assert {c["name"] for c in policies.body["calendars"]} == set(names)


def test_bad_calendars_and_policies_naming_none_are_400s_naming_the_field(desk: Desk) -> None:
    for body, field in (
        ({**BERLIN, "time_zone": "Europe/Atlantis"}, "time_zone"),
        ({**BERLIN, "holidays": {"country": "ZZ"}}, "holidays.country"),
        ({**BERLIN, "holidays": {"country": "DE", "subdivision": "XX"}}, "holidays.subdivision"),
        ({**BERLIN, "hours": {"mon": ["09:00-13:00", "12:00-18:00"]}}, "hours.mon"),
        ({**BERLIN, "hours": {"mon": ["18:00-09:00"]}}, "hours.mon"),
        ({**BERLIN, "hours": {"mon": ["09:00:00-18:00"]}}, "hours.mon.0"),
        ({**BERLIN, "hours": {}}, "hours"),
        ({**BERLIN, "closed_dates": ["0001-01-01"]}, "closed_dates.0"),
        ({**BERLIN, "closed_dates": ["2030-01-01"] * 400}, "closed_dates"),
        ({**BERLIN, "color": "blue"}, "color"),
    ):
        reply = desk.suite.call("PUT", "/tickets/calendars/berlin", body, role=MANAGER)
        assert reply.status == 400, (field, reply.body)
        assert field in [f["field"] for f in reply.body["error"]["fields"]], (field, reply.body)
    slug = desk.suite.call("PUT", "/tickets/calendars/Berlin%20Mitte", BERLIN, role=MANAGER)
    assert slug.status == 400, slug.body
    assert [f["field"] for f in slug.body["error"]["fields"]] == ["name"]
    policies = {"default": {"first_response": 60}, "calendars": {"normal": "moon"}}
    reply = desk.suite.call("PUT", "/tickets/sla-policies", policies, role=MANAGER)
    assert reply.status == 400, reply.body
    assert [f["field"] for f in reply.body["error"]["fields"]] == ["calendars.normal"]
    assert desk.suite.call("GET", "/tickets/calendars/berlin", role=MANAGER).status == 404


def test_built_ins_calendars_in_use_and_permissions(desk: Desk) -> None:
    for name in ("business_hours", "24x7"):
        replaced = desk.suite.call("PUT", f"/tickets/calendars/{name}", BERLIN, role=MANAGER)
        assert replaced.status == 409, replaced.body
        deleted = desk.suite.call("DELETE", f"/tickets/calendars/{name}", role=MANAGER)
        assert deleted.status == 409, deleted.body
    agent = desk.suite.call("PUT", "/tickets/calendars/berlin", BERLIN, role="support_agent")
    assert agent.status == 403
    put_calendar(desk, "berlin", BERLIN)
    assert desk.suite.call("DELETE", "/tickets/calendars/berlin",
                           role="support_agent").status == 403  # fmt: skip
    use_calendar(desk, "berlin")
    in_use = desk.suite.call("DELETE", "/tickets/calendars/berlin", role=MANAGER)
    assert in_use.status == 409, in_use.body
    assert "sla-v1" in in_use.body["error"]["message"]
    assert desk.suite.call("GET", "/tickets/calendars/berlin", role=MANAGER).status == 200
    missing = desk.suite.call("DELETE", "/tickets/calendars/paris", role=MANAGER)
    assert missing.status == 404


def test_a_shop_keeps_a_bounded_number_of_calendars(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("crm.tickets.service.MAX_CALENDARS", 2)
    put_calendar(desk, "one", BERLIN)
    put_calendar(desk, "two", BERLIN)
    third = desk.suite.call("PUT", "/tickets/calendars/three", BERLIN, role=MANAGER)
    assert third.status == 409, third.body
    put_calendar(desk, "two", {**BERLIN, "closed_dates": ["2026-12-24"]})  # a new version: fine
    assert desk.suite.call("DELETE", "/tickets/calendars/one", role=MANAGER).status == 200
    put_calendar(desk, "three", BERLIN)


def test_two_managers_saving_at_once_get_a_409_not_a_lost_edit(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_calendar(desk, "berlin", BERLIN)
    read = CalendarStore.get
    raced: list[bool] = []

    def read_then_race(self: CalendarStore, name: str) -> StoredCalendar | None:
        found = read(self, name)
        if not raced:  # another manager saves right after this one has read the calendar
            raced.append(True)
            put_calendar(desk, "berlin", {**BERLIN, "closed_dates": ["2026-12-24"]})
        return found

    monkeypatch.setattr(CalendarStore, "get", read_then_race)
    late = desk.suite.call("PUT", "/tickets/calendars/berlin",
                           {**BERLIN, "closed_dates": ["2026-12-31"]}, role=MANAGER)  # fmt: skip
    monkeypatch.undo()
    assert late.status == 409, late.body
    kept = desk.suite.call("GET", "/tickets/calendars/berlin", role=MANAGER).body
    assert (kept["version"], kept["definition"]["closed_dates"]) == ("berlin@v2", ["2026-12-24"])


def test_a_policy_saved_while_its_calendar_is_deleted_fails_one_of_them(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_calendar(desk, "berlin", BERLIN)
    read = CalendarStore.get
    raced: list[bool] = []

    def read_then_delete(self: CalendarStore, name: str) -> StoredCalendar | None:
        found = read(self, name)
        if not raced:  # the calendar is deleted right after the policies found it
            raced.append(True)
            assert desk.suite.call("DELETE", "/tickets/calendars/berlin",
                                   role=MANAGER).status == 200  # fmt: skip
        return found

    monkeypatch.setattr(CalendarStore, "get", read_then_delete)
    policies = {"default": {"first_response": 60}, "calendars": {"normal": "berlin"}}
    saved = desk.suite.call("PUT", "/tickets/sla-policies", policies, role=MANAGER)
    monkeypatch.undo()
    assert saved.status == 409, saved.body
    assert desk.suite.call("GET", "/tickets/sla-policies", role=MANAGER).body["version"] == (
        "sla-2026.12"
    )
