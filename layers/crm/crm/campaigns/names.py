"""Campaigns' names by id, for reports kept elsewhere (analytics' campaign ROI): a campaign id
is a segment send's or a journey's."""

from __future__ import annotations

from collections.abc import Iterable

from crm.campaigns.journey_store import JourneyStore
from crm.campaigns.send_store import SendStore


class CampaignNames:
    def __init__(self, sends: SendStore, journeys: JourneyStore) -> None:
        self._sends = sends
        self._journeys = journeys

    def names(self, campaign_ids: Iterable[str]) -> dict[str, str]:
        """The name of each campaign that exists (a deleted or unknown id is left out). One
        read per campaign: a report names tens of campaigns, computed once per cache period."""
        found: dict[str, str] = {}
        for campaign_id in sorted(set(campaign_ids)):
            send = self._sends.send(campaign_id)
            if send is not None:
                found[campaign_id] = str(send["name"])
                continue
            journey = self._journeys.head(campaign_id)
            if journey is not None:
                found[campaign_id] = journey.definition.name
        return found
