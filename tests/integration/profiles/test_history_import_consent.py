"""A historical import carries each customer's consent decisions (HistoryImportFunction against
moto): a new customer gets them with their ledger entries in its creating transaction, a
matched one keeps a later decision of its own, a retry records nothing twice, a history of one
purpose is kept with its latest holding, and too long a history is refused before anything is
staged."""

from __future__ import annotations

from typing import Any

import boto3

from crm_local.harness import Suite
from tests.integration.profiles.test_history_import import days_ago, owner, start, status, view
from tests.integration.profiles.test_history_import_matching import imported, paid, shopper


def consent_entries(suite: Suite, customer_id: str) -> list[dict[str, Any]]:
    """The customer's consent entries in the ledger (`LEDGER#consent:<key>`)."""
    pages = (
        boto3.client("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=suite.stack.refs["CustomersTable"],
            FilterExpression="begins_with(PK, :pk) AND customer_id = :cid",
            ExpressionAttributeValues={":pk": {"S": "LEDGER#consent:"}, ":cid": {"S": customer_id}},
        )
    )
    return [item for page in pages for item in page["Items"]]


def decision(purpose: str, granted: bool, days: float) -> dict[str, Any]:
    return {"purpose": purpose, "granted": granted, "source": "app", "decided_at": days_ago(days)}


def test_a_new_customers_consent_comes_with_the_import(suite: Suite) -> None:
    new = shopper("r-1", "u-consent-1", paid("c1-"))
    new["consent"] = [decision("marketing_sms", True, 300), decision("marketing_email", False, 20)]
    imported(suite, [new])
    cid = owner(suite, "u-consent-1")
    consent = view(suite, cid)["consent"]
    assert consent["marketing_sms"]["granted"] is True
    assert consent["marketing_sms"]["decided_at"] == days_ago(300)
    assert consent["marketing_email"]["granted"] is False
    entries = consent_entries(suite, cid)
    assert len(entries) == 2
    assert {e["body"]["M"]["by"]["S"] for e in entries} == {"import"}


def test_a_matched_customer_keeps_a_later_decision_of_its_own(suite: Suite) -> None:
    imported(suite, [shopper("r-1", "u-consent-2", [])])
    cid = owner(suite, "u-consent-2")
    later = {"purpose": "marketing_sms", "granted": False, "source": "store-9",
             "decided_at": days_ago(5)}  # fmt: skip
    assert suite.call("PUT", f"/customers/{cid}/consent", later).status == 200
    again = shopper("r-1", "u-consent-2", [])
    again["consent"] = [decision("marketing_sms", True, 100), decision("marketing_push", True, 50)]
    imported(suite, [again])
    consent = view(suite, cid)["consent"]
    assert consent["marketing_sms"]["granted"] is False  # the profile's own, later, decision
    assert consent["marketing_sms"]["source"] == "store-9"
    assert consent["marketing_push"]["granted"] is True
    assert len(consent_entries(suite, cid)) == 2  # the PUT's and the import's push

    # The same history imported once more records nothing again.
    imported(suite, [again])
    assert len(consent_entries(suite, cid)) == 2


def test_a_history_of_decisions_on_one_purpose_is_kept_and_the_latest_holds(
    suite: Suite,
) -> None:
    history = shopper("r-1", "u-consent-3", [])
    history["consent"] = [
        decision("marketing_sms", False, 9),  # listed first, decided last
        decision("marketing_sms", True, 100),
        decision("marketing_sms", True, 40),
        # Of decisions at the same time (here none says when: the import's time), the last
        # listed holds.
        {"purpose": "profiling", "granted": True, "source": "app"},
        {"purpose": "profiling", "granted": False, "source": "store-2"},
    ]
    imported(suite, [history])
    cid = owner(suite, "u-consent-3")
    consent = view(suite, cid)["consent"]
    assert consent["marketing_sms"]["granted"] is False
    assert consent["marketing_sms"]["decided_at"] == days_ago(9)
    assert consent["profiling"] == {**consent["profiling"], "granted": False, "source": "store-2"}
    entries = consent_entries(suite, cid)
    sms = sorted(e["at"]["S"] for e in entries if e["body"]["M"]["purpose"]["S"] == "marketing_sms")
    assert sms == sorted([days_ago(100), days_ago(40), days_ago(9)])
    assert len(entries) == 5

    # The same history again: the decisions with a time are applied already.
    imported(suite, [{**history, "consent": history["consent"][:3]}])
    assert len(consent_entries(suite, cid)) == 5


def test_more_decisions_than_a_history_holds_are_refused_before_anything_is_staged(
    suite: Suite,
) -> None:
    many = shopper("r-1", "u-consent-4", [])
    many["consent"] = [decision("marketing_sms", n % 2 == 0, n + 1) for n in range(101)]
    reply = suite.call("POST", "/imports", {"customers": [many]})
    assert reply.status == 400, reply.body
    assert "consent" in str(reply.body["error"])
    fine = shopper("r-2", "u-consent-5", [])
    fine["consent"] = [decision("marketing_sms", True, 100)]
    assert status(suite, start(suite, [fine]))["status"] == "queued"
