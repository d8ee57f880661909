"""Where functions find their resources: environment variables that template.yaml sets.

Each family reads its own settings (`crm.<family>.settings`); this module holds what every
family shares (the lake and the bus) and the one way to read a variable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"environment variable {name} is not set (see template.yaml Globals)")
    return value


@dataclass(frozen=True)
class PlatformSettings:
    lake_bucket: str
    event_bus_name: str

    @classmethod
    def from_env(cls) -> PlatformSettings:
        return cls(lake_bucket=env("LAKE_BUCKET"), event_bus_name=env("EVENT_BUS_NAME"))
