"""Optimistic concurrency on tickets: a change that lands between a read and its commit is
never lost; the later change runs again on fresh data, and the clock ledger stays one ledger."""

from __future__ import annotations

import boto3
import pytest

from crm.tickets.records import ClockEntry, TicketRecord
from crm.tickets.store import TicketStore
from tests.integration.tickets.conftest import Desk


def test_a_status_change_racing_a_reply_retries_and_keeps_both(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = desk.customer()
    ticket_id = desk.open(cid, "快递丢件了").body["ticket_id"]
    desk.clock.advance(minutes=10)
    original = TicketStore.get
    raced: list[bool] = []

    def read_then_race(
        self: TicketStore, wanted: str
    ) -> tuple[TicketRecord, list[ClockEntry]] | None:
        found = original(self, wanted)
        if not raced:  # an agent replies right after the status change has read the ticket
            raced.append(True)
            reply = desk.suite.call("POST", f"/tickets/{ticket_id}/messages",
                                    {"channel": "app", "text": "已联系快递"},
                                    role="support_agent")  # fmt: skip
            assert reply.status == 201
        return found

    monkeypatch.setattr(TicketStore, "get", read_then_race)
    moved = desk.suite.call(
        "POST",
        f"/tickets/{ticket_id}/status",
        {"status": "waiting_third_party"},
        role="support_agent",
    )
    monkeypatch.undo()
    assert moved.status == 200, moved.body
    assert raced == [True]
    ticket = desk.ticket(ticket_id)
    assert ticket["status"] == "waiting_third_party"
    states = {d["metric"]: d["state"] for d in ticket["deadlines"]}
    assert states == {"first_response": "met", "feedback": "met", "resolution": "paused"}
    # The status change was committed on top of the reply, not over it.
    table = str(desk.suite.stack.refs["TicketsTable"])
    item = boto3.client("dynamodb").get_item(
        TableName=table, Key={"PK": {"S": f"TICKET#{ticket_id}"}, "SK": {"S": "#TICKET"}}
    )["Item"]
    assert item["rev"]["N"] == "2"
    assert item["first_replied_at"]["S"].startswith("2026-11-23T02:10:00")
