"""The analytics routes through the API function, against moto's lake bucket holding the
hand-checked dataset (tests/unit/analytics/dataset.py) as the lake keeps it: JSON Lines."""

from __future__ import annotations

import json

import pytest

from crm import aws
from crm.composition import root
from crm_local.harness import Suite
from tests.unit.analytics.dataset import lake_key, partitions

NOVEMBER = {"from": "2026-11-01", "to": "2026-11-30", "grain": "month"}


def lake_bucket(suite: Suite) -> str:
    return str(suite.stack.refs["LakeBucket"])


def write_dataset(suite: Suite) -> None:
    for (source, kind, day), rows in partitions().items():
        runs = {row.get("run_id") for row in rows} if source == "segment_scores" else {None}
        for run in runs:
            part = [r for r in rows if run is None or r["run_id"] == run]
            body = "".join(json.dumps(r) + "\n" for r in part).encode()
            key = lake_key(source, kind, day, run)
            aws.s3().put_object(Bucket=lake_bucket(suite), Key=key, Body=body)


@pytest.fixture
def lake(suite: Suite) -> Suite:
    write_dataset(suite)
    return suite


def test_the_catalogue_lists_every_metric_with_its_titles_and_filters(suite: Suite) -> None:
    reply = suite.call("GET", "/analytics/metrics", role="analyst")
    assert reply.status == 200
    names = {m["name"]: m for m in reply.body["metrics"]}
    assert len(names) == 17
    assert names["funnel"]["title"] == {"en": "Conversion funnel", "zh": "转化漏斗"}
    assert names["funnel"]["filters"] == ["channel", "category"]
    assert names["campaign_roi"]["filters"] == ["campaign"]
    # The service's day, by its clock (the emulator's moves with `clock advance`): the
    # dashboard's default periods end there when it is later than the browser's day.
    assert reply.body["today"] == root().clock().date().isoformat()


def test_a_metric_in_the_agreed_shape_then_from_the_cache(lake: Suite) -> None:
    reply = lake.call("GET", "/analytics/metrics/funnel", role="marketer", query=NOVEMBER)
    assert reply.status == 200, reply.body
    body = reply.body
    assert body["name"] == "funnel"
    assert (body["unit"], body["chart"]) == ("count", "funnel")
    assert body["period"] == {"from": "2026-11-01", "to": "2026-11-30", "grain": "month"}
    assert body["series"] == [{
        "name": "all", "label": {"en": "All", "zh": "全部"},
        "points": [{"x": "view", "y": 3.0}, {"x": "cart", "y": 2.0},
                   {"x": "order", "y": 2.0}, {"x": "paid", "y": 1.0}],
        "unit": None,  # the metric's own: a series names one only where it differs
    }]  # fmt: skip
    assert body["cached"] is False

    # A new event now would not show until the cache entry expires: the second view is cached.
    again = lake.call("GET", "/analytics/metrics/funnel", role="marketer", query=NOVEMBER)
    assert again.body["cached"] is True
    assert again.body["series"] == body["series"]
    assert again.body["computed_at"] == body["computed_at"]
    listed = aws.s3().list_objects_v2(Bucket=lake_bucket(lake), Prefix="analytics/cache/funnel/")
    assert listed["KeyCount"] == 1

    # another filter is another entry
    wechat = lake.call("GET", "/analytics/metrics/funnel", role="admin",
                       query={**NOVEMBER, "channel": "wechat"})  # fmt: skip
    assert wechat.body["cached"] is False
    assert [p["y"] for p in wechat.body["series"][0]["points"]] == [1.0, 1.0, 1.0, 0.0]


def test_every_metric_answers_over_the_lake(lake: Suite) -> None:
    listing = lake.call("GET", "/analytics/metrics", role="analyst").body["metrics"]
    for metric in listing:
        reply = lake.call(
            "GET", f"/analytics/metrics/{metric['name']}", role="analyst",
            query={"from": "2026-10-01", "to": "2026-11-30", "grain": "month"},
        )  # fmt: skip
        assert reply.status == 200, (metric["name"], reply.body)
        assert reply.body["series"], f"{metric['name']} has no series on the dataset"
    roi = lake.call("GET", "/analytics/metrics/campaign_roi", role="analyst", query=NOVEMBER)
    assert {s["name"]: s["points"] for s in roi.body["series"]}["roi"] == [
        {"x": "c1/A", "y": 149.0}
    ]


@pytest.mark.parametrize(
    ("path", "query", "status"),
    [
        ("/analytics/metrics/nope", {}, 404),
        ("/analytics/metrics/tier_shares", {"category": "shoes"}, 400),
        ("/analytics/metrics/funnel", {"grain": "hour"}, 400),
        ("/analytics/metrics/funnel", {"from": "2026-11-30", "to": "2026-11-01"}, 400),
        ("/analytics/metrics/funnel", {"from": "yesterday"}, 400),
        ("/analytics/metrics/funnel", {"from": "2020-01-01", "to": "2026-01-01"}, 400),
        ("/analytics/metrics/funnel", {"channel": "app' OR 1=1 --"}, 400),
        ("/analytics/metrics/funnel", {"channel": "tiktok"}, 400),
    ],
)
def test_bad_requests_are_told_why(
    suite: Suite, path: str, query: dict[str, str], status: int
) -> None:
    reply = suite.call("GET", path, role="analyst", query=query)
    assert reply.status == status
    assert reply.body["error"]["message"]


def test_only_analysts_marketers_and_admins_read_metrics(suite: Suite) -> None:
    assert suite.call("GET", "/analytics/metrics", role="support_agent").status == 403
    assert suite.call("GET", "/analytics/metrics", role="customer", customer_id="c1").status == 403
    assert suite.call("GET", "/analytics/metrics", role=None).status in {401, 403}
