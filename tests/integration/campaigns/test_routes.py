"""The contact policy and the outbox through API Gateway's event and the Chalice handler."""

from __future__ import annotations

import pytest

from crm.composition import root
from crm_local import cli
from tests.integration.campaigns.conftest import Shop


def test_the_policy_has_defaults_and_only_editors_change_it(shop: Shop) -> None:
    out = shop.suite.call("GET", "/campaigns/policy", role="analyst")
    assert out.status == 200
    policy = out.body["policy"]
    assert (policy["time_zone"], policy["quiet_hours"]) == (
        "Asia/Shanghai", {"start": "21:00", "end": "09:00"})  # fmt: skip
    assert policy["weekly_cap"] == 3
    assert policy["channels"]["sms"]["daily_cap"] == 1
    assert out.body["updated_at"] is None
    assert shop.suite.call("PUT", "/campaigns/policy", policy, role="analyst").status == 403
    bad = shop.suite.call("PUT", "/campaigns/policy", {**policy, "time_zone": "Mars/Base"})
    assert bad.status == 400
    assert bad.body["error"]["fields"][0]["field"] == "time_zone"
    # Only what changes need be sent: the rest keeps its default.
    partial = shop.suite.call("PUT", "/campaigns/policy", {"weekly_cap": 5}, role="marketer")
    assert partial.status == 200
    assert partial.body["policy"]["channels"]["sms"]["daily_cap"] == 1
    too_big = shop.suite.call("PUT", "/campaigns/policy", {**policy, "global_control_pct": 40})
    assert too_big.status == 400
    # No quiet hours, and two SMS a day.
    changed = {**policy, "quiet_hours": None,
               "channels": {**policy["channels"], "sms": {**policy["channels"]["sms"],
                                                         "daily_cap": 2}}}  # fmt: skip
    saved = shop.suite.call("PUT", "/campaigns/policy", changed, role="marketer")
    assert saved.status == 200
    assert saved.body["updated_by"] == "marketer-1"
    assert shop.suite.call("GET", "/campaigns/policy").body["policy"] == saved.body["policy"]
    cid = shop.customer("marketing_sms")
    shop.clock.now = shop.clock.now.replace(hour=15)  # 23:00 in Shanghai
    dispatcher = root().campaign_dispatch
    assert dispatcher.dispatch(shop.request(cid, step="a")).status == "sent"
    assert dispatcher.dispatch(shop.request(cid, step="b")).status == "sent"
    assert dispatcher.dispatch(shop.request(cid, step="c")).status == "capped"


def test_the_outbox_shows_what_would_have_been_sent(shop: Shop) -> None:
    cid = shop.customer("marketing_sms", "marketing_email")
    dispatcher = root().campaign_dispatch
    dispatcher.dispatch(shop.request(cid))
    shop.clock.advance(minutes=1)
    dispatcher.dispatch(shop.request(cid, channel="email", campaign_id="camp-2"))
    out = shop.suite.call("GET", "/campaigns/outbox", query={"customer_id": cid}, role="analyst")
    assert out.status == 200
    assert [(e["channel"], e["campaign_id"]) for e in out.body["entries"]] == [
        ("sms", "camp-1"), ("email", "camp-2")]  # fmt: skip
    email = out.body["entries"][1]
    assert email["to"].endswith("***@shop.example.com")
    assert email["subject"] == "你好"
    only = shop.suite.call("GET", "/campaigns/outbox",
                           query={"customer_id": cid, "campaign_id": "camp-2"})  # fmt: skip
    assert len(only.body["entries"]) == 1
    assert shop.suite.call("GET", "/campaigns/outbox").status == 400
    assert shop.suite.call("GET", "/campaigns/outbox", query={"customer_id": cid},
                           role="support_agent").status == 403  # fmt: skip


def test_crm_local_outbox_lists_what_would_have_been_sent(
    shop: Shop, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = shop.customer("marketing_sms"), shop.customer("marketing_sms")
    dispatcher = root().campaign_dispatch
    dispatcher.dispatch(shop.request(first))
    shop.clock.advance(minutes=1)
    dispatcher.dispatch(shop.request(second, campaign_id="camp-2"))
    everything = cli.outbox_entries()
    assert [e["customer_id"] for e in everything] == [first, second]
    assert [e["customer_id"] for e in cli.outbox_entries(campaign="camp-2")] == [second]
    assert [e["campaign_id"] for e in cli.outbox_entries(customer=first)] == ["camp-1"]
    monkeypatch.setattr(cli, "_running", lambda _: {"aws_endpoint": None})
    monkeypatch.setattr(cli, "use_endpoint", lambda _: None)
    assert cli.main(["outbox", "--customer", second]) == 0
    line = capsys.readouterr().out.strip()
    assert f"sms     {second} -> 138" in line
    assert line.endswith("camp-2: [你好] 张*，欢迎！退订：" + line.split("退订：")[1])
