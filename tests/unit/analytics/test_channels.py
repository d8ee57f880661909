"""The channel filter: the lake's rows name channels as the events and the tickets do, and a
shop's stores differently in each (`offline_store`, `store`); a filter names either."""

from __future__ import annotations

from datetime import date

import pytest

from crm.analytics.metrics import CHANNELS, EVENT_CHANNELS, METRICS, TICKET_CHANNELS
from crm.analytics.service import parse_query
from crm.errors import InvalidInput
from crm.profiles.record_models import Channel
from crm.tickets.models import TicketChannel

TODAY = date(2026, 11, 30)


def test_the_vocabularies_are_the_events_and_the_tickets() -> None:
    assert set(EVENT_CHANNELS) == {c.value for c in Channel}
    assert set(TICKET_CHANNELS) == {c.value for c in TicketChannel}
    assert set(CHANNELS) == set(EVENT_CHANNELS) | set(TICKET_CHANNELS)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_a_metric_reads_the_channels_of_its_rows(name: str) -> None:
    metric = METRICS[name]
    assert (metric.source == "tickets") == ("FROM ticket_facts" in metric.sql), name


def test_a_stores_filter_reads_the_stores_of_every_metric() -> None:
    orders, sla = METRICS["channel_aov"], METRICS["sla_attainment"]
    for value in ("store", "offline_store"):
        assert parse_query(orders, {"channel": value}, TODAY).filters == {
            "channel": "offline_store"
        }
        assert parse_query(sla, {"channel": value}, TODAY).filters == {"channel": "store"}
    assert parse_query(sla, {"channel": "wechat"}, TODAY).filters == {"channel": "wechat"}
    # A channel one side never names reads nothing there, as it should: no orders by group chat.
    assert parse_query(orders, {"channel": "community_group"}, TODAY).filters == {
        "channel": "community_group"
    }


def test_an_unknown_channel_is_refused_with_the_channels() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_query(METRICS["funnel"], {"channel": "tiktok"}, TODAY)
    assert "offline_store" in str(refused.value)
    assert refused.value.fields[0].field == "channel"
