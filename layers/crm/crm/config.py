"""Where functions find their resources: environment variables that template.yaml sets.

Each family reads its own settings (`crm.<family>.settings`); this module holds what every
family shares (the lake and the bus) and the one way to read a variable.
"""

from __future__ import annotations

import os
from enum import StrEnum
from typing import NamedTuple


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"environment variable {name} is not set (see template.yaml Globals)")
    return value


class DataRegion(StrEnum):
    """Where a customer's data must be kept. One stack serves one data region
    (template.yaml's DataRegion); customers of another region belong to that region's stack."""

    CN = "cn"  # mainland China (PIPL): the shop's home market
    EU = "eu"  # the European Union and EEA (GDPR)
    US = "us"  # the United States (CCPA) and the rest of the world the shop serves from there


def data_region() -> DataRegion:
    """This stack's data region (DATA_REGION, set from template.yaml's DataRegion)."""
    return DataRegion(env("DATA_REGION"))


class PlatformSettings(NamedTuple):
    lake_bucket: str
    event_bus_name: str

    @classmethod
    def from_env(cls) -> PlatformSettings:
        return cls(lake_bucket=env("LAKE_BUCKET"), event_bus_name=env("EVENT_BUS_NAME"))
