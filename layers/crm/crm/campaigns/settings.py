"""The campaigns family's resources, from the environment template.yaml sets."""

from __future__ import annotations

from typing import NamedTuple

from crm.config import env


class CampaignsSettings(NamedTuple):
    campaigns_table: str

    # campaigns: J (journeys). Read when first used: only the daily journey functions use it.
    @property
    def journey_daily_queue_url(self) -> str:
        return env("JOURNEY_DAILY_QUEUE_URL")

    @classmethod
    def from_env(cls) -> CampaignsSettings:
        return cls(campaigns_table=env("CAMPAIGNS_TABLE"))
