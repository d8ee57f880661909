"""A send to an RFM cell on a stack whose `rfm_members` index is not there yet, though the
layout marker says the listings moved onto it (the upgrade's second deploy unfinished): the
listing task fails and comes back, rather than listing nobody and completing the send; once
the index is deployed, the same task lists the members and the send completes."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from moto import mock_aws

from crm_local.harness import Suite, local_suite
from tests.integration.segments.test_index_upgrade import (
    deploy_member_index,
    without_member_index,
)
from tests.integration.sends.conftest import Kit


@pytest.fixture
def suite() -> Iterator[Suite]:
    """The sends kit on a stack between the upgrade's two deploys (no `rfm_members`)."""
    with mock_aws(), local_suite(without_member_index("rfm_members", "RFM")) as deployed:
        yield deployed


def test_a_send_fails_its_listing_visibly_until_the_index_is_deployed(kit: Kit) -> None:
    members = [f"c-{k:03d}" for k in range(30)]
    kit.members("rfm:champions", members)  # scores items, and the marker: "indexed"
    send = kit.create_send()
    preview = kit.suite.call("POST", f"/campaigns/sends/{send['send_id']}/preview",
                             role="marketer")  # fmt: skip
    assert preview.status == 503, preview.body
    assert "member index rfm_members is not ready" in preview.body["error"]["message"]
    assert kit.act(send["send_id"], "start").status == 200

    for _ in range(2):  # each delivery fails; SQS brings the task back (then its DLQ)
        listing = kit.tasks()
        assert [json.loads(m["Body"])["kind"] for m in listing] == ["list"]
        kit.deliver(listing)
        now = kit.send(send["send_id"])
        assert now["status"] == "running"  # not complete with nobody sent to
        assert now["progress"]["pages_listed"] == 0
        assert now["progress"]["listing_done"] is False
    assert kit.dispatch.requests == []

    deploy_member_index(kit.suite, "rfm_members")
    assert kit.run() >= 2  # the listing task, then its page
    done = kit.send(send["send_id"])
    assert done["status"] == "complete"
    assert done["progress"]["recipients"] == len(members)
    assert {r.customer_id for r in kit.dispatch.requests} == set(members)
