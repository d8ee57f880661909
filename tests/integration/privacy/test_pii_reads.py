"""Every staff read of a customer's unmasked PII lands in the audit trail through the handler:
a profile read, a search's matches (one entry per customer shown), a ticket conversation's
messages, an after-sales case's note. Who, which customer, which fields (names), why (a reason
code); never a value. A customer reading their own data, and a role that sees PII masked, are
not staff reads of unmasked PII."""

from __future__ import annotations

from typing import Any

from tests.integration.privacy.conftest import Office
from tests.integration.privacy.test_audit import _entries

PHONE = "13800138077"
NAME = "赵六"
WORDS = "快递盒子破了，杯子碎了"


def _reads(office: Office, before: int) -> list[dict[str, Any]]:
    return [
        {
            "actor": i["actor"]["S"],
            "customer_id": i["customer_id"]["S"],
            "fields": sorted(f["S"] for f in i["fields"]["L"]),
            "why": i["why"]["S"],
        }
        for i in _entries(office)[before:]
        if i["action"]["S"] == "pii_read"
    ]


def _customer(office: Office, key: str, phone: str = PHONE) -> str:
    body = {"identities": [{"channel": "app", "external_id": f"reads-{key}"},
                           {"channel": "phone", "external_id": phone}],
            "attributes": {"name": NAME, "phone": phone}}  # fmt: skip
    reply = office.suite.call("POST", "/customers", body)
    assert reply.status == 201, reply.body
    return str(reply.body["customer_id"])


def test_a_search_records_each_customer_it_shows_unmasked(office: Office) -> None:
    zhao = _customer(office, "zhao")
    qian = _customer(office, "qian", phone="13800138078")
    before = len(_entries(office))
    found = office.suite.call("POST", "/customers/search",
                              {"phone": PHONE, "identity": {"channel": "app",
                                                            "external_id": "reads-qian"}},
                              role="support_agent")  # fmt: skip
    assert found.status == 200, found.body
    assert {m["customer_id"] for m in found.body["matches"]} == {zhao, qian}
    assert found.body["matches"][0]["profile"]["pii"] == "full"
    reads = sorted(_reads(office, before), key=lambda r: str(r["customer_id"]))
    expected = [
        {"actor": "agent-1", "customer_id": cid, "fields": ["name", "phone"],
         "why": "customer_search"}
        for cid in sorted((zhao, qian))
    ]  # fmt: skip
    assert reads == expected
    # Nothing matching shows nobody: nothing recorded.
    none = office.suite.call("POST", "/customers/search", {"phone": "13900000001"},
                             role="support_agent")  # fmt: skip
    assert none.body == {"matches": []}
    assert len(_reads(office, before)) == 2
    entries = str(_entries(office))
    assert PHONE not in entries
    assert NAME not in entries


def test_a_profile_read_and_an_edits_answer_are_recorded_and_a_masked_one_is_not(
    office: Office,
) -> None:
    cid = _customer(office, "sun")
    before = len(_entries(office))
    assert office.suite.call("GET", f"/customers/{cid}", role="marketer").status == 200
    assert _reads(office, before) == []  # masked
    assert office.suite.call("GET", f"/customers/{cid}", role="customer",
                             customer_id=cid).status == 200  # fmt: skip
    assert _reads(office, before) == []  # their own
    read = office.suite.call("GET", f"/customers/{cid}", role="support_agent")
    assert read.status == 200
    edit = {"version": read.body["version"], "attributes": {"city": "杭州"}}
    edited = office.suite.call("PATCH", f"/customers/{cid}", edit, role="support_agent")
    assert edited.status == 200, edited.body
    assert edited.body["pii"] == "full"
    assert [(r["customer_id"], r["why"]) for r in _reads(office, before)] == [
        (cid, "profile_view"),
        (cid, "profile_view"),
    ]


def test_staff_reading_a_conversation_is_recorded_the_customer_reading_theirs_is_not(
    office: Office,
) -> None:
    cid = _customer(office, "li")
    opened = office.suite.call("POST", "/tickets", {"customer_id": cid, "channel": "app",
                               "message": WORDS}, role="customer", customer_id=cid)  # fmt: skip
    assert opened.status == 201, opened.body
    before = len(_entries(office))
    own = office.suite.call("GET", f"/customers/{cid}/conversation", role="customer",
                            customer_id=cid)  # fmt: skip
    assert own.status == 200, own.body
    assert _reads(office, before) == []
    staff = office.suite.call("GET", f"/customers/{cid}/conversation", role="support_agent")
    assert staff.status == 200, staff.body
    assert [m["text"] for m in staff.body["messages"]] == [WORDS]
    assert _reads(office, before) == [
        {"actor": "agent-1", "customer_id": cid, "fields": ["message_text"],
         "why": "ticket_conversation"}
    ]  # fmt: skip
    assert WORDS not in str(_entries(office))


def test_staff_reading_an_aftersales_note_is_recorded(office: Office) -> None:
    cid = _customer(office, "zhou")
    case = {"kind": "return", "order_id": "o-reads-1", "customer_id": cid,
            "reason": "damaged_in_transit", "amount": "59.00", "note": WORDS}  # fmt: skip
    made = office.suite.call("POST", "/aftersales", case, role="customer", customer_id=cid)
    assert made.status == 201, made.body
    case_id = made.body["case_id"]
    before = len(_entries(office))
    assert office.suite.call("GET", f"/aftersales/{case_id}", role="customer",
                             customer_id=cid).status == 200  # fmt: skip
    assert _reads(office, before) == []
    one = office.suite.call("GET", f"/aftersales/{case_id}", role="support_agent")
    assert one.status == 200, one.body
    assert one.body["note"] == WORDS
    listed = office.suite.call("GET", f"/customers/{cid}/aftersales", role="support_agent")
    assert listed.status == 200, listed.body
    expected = {"actor": "agent-1", "customer_id": cid, "fields": ["note"],
                "why": "aftersales_case"}  # fmt: skip
    assert _reads(office, before) == [expected, expected]
    assert WORDS not in str(_entries(office))
