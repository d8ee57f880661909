"""The campaign ROI metric names its campaigns (GET /analytics/metrics/campaign_roi, through the
handler): a segment send's or a journey's name beside each `campaign_id/variant`; an id whose
campaign no longer exists keeps its id alone."""

from __future__ import annotations

from decimal import Decimal

from crm.campaigns.facts import conversion_fact
from crm.composition import root
from crm_local.harness import count_requests
from tests.integration.journeys.conftest import store_templates
from tests.integration.sends.conftest import Kit, kit  # noqa: F401


def test_the_roi_table_names_sends_and_journeys(kit: Kit) -> None:  # noqa: F811
    store_templates(kit.suite)
    variants = [{"name": "A", "weight": 50}, {"name": "B", "weight": 50, "template_id": "t-2"}]
    send_id = str(kit.create_send(variants=variants)["send_id"])
    examples = kit.suite.call("GET", "/campaigns/journeys/examples", role="marketer").body
    definition = examples["examples"][0]
    created = kit.suite.call("POST", "/campaigns/journeys", definition, role="marketer")
    assert created.status == 201, created.body
    journey_id = str(created.body["journey_id"])
    now = kit.clock()
    facts = root().facts
    for n, (campaign_id, variant) in enumerate(
        [(send_id, "A"), (send_id, "B"), (journey_id, "A"), ("gone-campaign", "A")]
    ):
        fact = conversion_fact(
            f"o-{n}", campaign_id, "treatment", variant, f"c-{n}", Decimal("10.00"), now
        )
        facts.write("campaign_facts", fact)
    facts.flush()

    day = now.date().isoformat()
    query = {"from": day, "to": day}
    with count_requests() as counts:
        out = kit.suite.call("GET", "/analytics/metrics/campaign_roi", role="analyst", query=query)
    assert out.status == 200, out.body
    xs = {p["x"] for s in out.body["series"] for p in s["points"]}
    assert xs == {f"{send_id}/A", f"{send_id}/B", f"{journey_id}/A", "gone-campaign/A"}
    assert out.body["x_labels"] == {
        f"{send_id}/A": "双十二 预热 / A",
        f"{send_id}/B": "双十二 预热 / B",
        f"{journey_id}/A": f"{definition['name']} / A",
    }
    # A read per campaign: the send's item, else the journey's head (then none for the gone).
    assert counts["dynamodb.GetItem"] == 1 + 2 + 2

    # Served from the cache with its names, without reading the campaigns again.
    with count_requests() as again:
        cached = kit.suite.call("GET", "/analytics/metrics/campaign_roi", role="analyst",
                                query=query)  # fmt: skip
    assert cached.body["cached"] is True
    assert cached.body["x_labels"] == out.body["x_labels"]
    assert "dynamodb.GetItem" not in again
