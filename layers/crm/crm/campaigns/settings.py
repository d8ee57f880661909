"""The campaigns family's resources, from the environment template.yaml sets."""

from __future__ import annotations

from dataclasses import dataclass

from crm.config import env


@dataclass(frozen=True)
class CampaignsSettings:
    campaigns_table: str

    @classmethod
    def from_env(cls) -> CampaignsSettings:
        return cls(campaigns_table=env("CAMPAIGNS_TABLE"))
