"""Deadlines on the timers: a reminder before, a missed deadline marked, announced and counted
(PrivacyDeadlinesMissed, which PrivacyDeadlineMissedAlarm watches), extensions moving both."""

from __future__ import annotations

import pytest

from crm.privacy.models import RequestStatus
from tests.integration.privacy.conftest import Office


def _kinds(office: Office) -> list[str]:
    return [e["detail-type"] for e in office.events()]


def test_an_open_request_is_reminded_then_marked_missed_and_counted(
    office: Office, capsys: pytest.CaptureFixture[str]
) -> None:
    cid = office.customer()
    filed = office.file(cid, "erasure", regulation="gdpr")
    rid = filed.body["request_id"]
    assert filed.body["due_at"] == "2026-12-23T15:59:59Z"

    office.clock.advance(days=27)
    office.sweep()
    assert _kinds(office) == []  # not yet
    office.clock.advance(days=1)  # 3 days before the deadline
    office.sweep()
    assert _kinds(office) == ["PrivacyDeadlineNear"]
    assert office.get(rid)["deadline_missed"] is False

    capsys.readouterr()
    office.clock.advance(days=3)
    office.sweep()
    assert office.get(rid)["deadline_missed"] is True
    assert _kinds(office) == ["PrivacyDeadlineMissed"]
    assert '"PrivacyDeadlinesMissed":[1.0]' in capsys.readouterr().out
    office.sweep()
    assert _kinds(office) == []  # once


def test_a_completed_request_is_never_late(office: Office) -> None:
    cid = office.customer()
    office.stores[1].failures = 0
    rid = office.file(cid, "access").body["request_id"]
    office.work()
    assert office.get(rid)["status"] == RequestStatus.COMPLETED
    office.clock.advance(days=40)
    office.sweep()
    assert office.get(rid)["deadline_missed"] is False
    assert [k for k in _kinds(office) if k != "PrivacyRequestCompleted"] == []


def test_an_extension_moves_the_deadline_once_and_tells_the_customer(office: Office) -> None:
    cid = office.customer()
    rid = office.file(cid, "erasure", regulation="gdpr").body["request_id"]
    extended = office.act(rid, "extend", {"reason": "complex_request"})
    assert extended.status == 200, extended.body
    assert extended.body["due_at"] == "2027-02-23T15:59:59Z"
    assert extended.body["extended"] is True
    notice = [e for e in office.events() if e["detail-type"] == "PrivacyDeadlineExtended"]
    assert [e["detail"]["reason"] for e in notice] == ["complex_request"]
    assert office.act(rid, "extend", {"reason": "again"}).status == 409
    assert office.act(rid, "extend", {"reason": "x"}, role="support_agent").status == 403

    office.clock.advance(days=32)  # past the first deadline
    office.sweep()
    assert office.get(rid)["deadline_missed"] is False
    office.clock.advance(days=62)
    office.sweep()
    assert office.get(rid)["deadline_missed"] is True


def test_pipl_allows_no_extension(office: Office) -> None:
    cid = office.customer()
    rid = office.file(cid, "erasure").body["request_id"]
    reply = office.act(rid, "extend", {"reason": "complex_request"})
    assert reply.status == 400
    assert "PIPL" in reply.body["error"]["message"]


def test_ccpa_requests_carry_their_acknowledgement_deadline(office: Office) -> None:
    cid = office.customer()
    body = office.file(cid, "access", regulation="ccpa").body
    assert body["due_at"] == "2027-01-07T15:59:59Z"
    assert body["acknowledge_by"] == "2026-12-07T15:59:59Z"
