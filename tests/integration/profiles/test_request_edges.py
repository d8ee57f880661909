"""Edges the property-based API test found, pinned: each was a 500 or a status the document
did not give."""

from __future__ import annotations

from crm_local.harness import Suite


def test_an_email_too_long_for_an_identity_is_a_400_naming_it(suite: Suite) -> None:
    email = "ann@" + "b" * 60 + "." + "c" * 60 + ".com"  # a valid address of 129 characters
    body = {
        "identities": [{"channel": "app", "external_id": "ann"}],
        "attributes": {"email": email},
    }
    reply = suite.call("POST", "/customers", body)
    assert reply.status == 400
    assert [f["field"] for f in reply.body["error"]["fields"]] == ["attributes.email"]


def test_merging_an_unknown_profile_into_itself_is_a_404(suite: Suite) -> None:
    reply = suite.call("POST", "/customers/nobody/merge", {"source_customer_id": "nobody"})
    assert reply.status == 404


def test_merging_a_profile_into_itself_is_a_400(suite: Suite) -> None:
    body = {"identities": [{"channel": "app", "external_id": "ann"}]}
    ann = suite.call("POST", "/customers", body).body["customer_id"]
    reply = suite.call("POST", f"/customers/{ann}/merge", {"source_customer_id": ann})
    assert reply.status == 400
    assert [f["field"] for f in reply.body["error"]["fields"]] == ["source_customer_id"]
