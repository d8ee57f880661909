"""The analytics family's resources, from the environment template.yaml sets (the lake is the
platform's: crm.config.PlatformSettings.lake_bucket)."""

from __future__ import annotations

import os
from typing import Literal, NamedTuple

from crm.config import env

EngineName = Literal["athena", "duckdb"]


class AnalyticsSettings(NamedTuple):
    engine: EngineName
    workgroup: str
    database: str
    fresh_minutes: int

    @classmethod
    def from_env(cls) -> AnalyticsSettings:
        # Athena in AWS; the local emulator (and the tests) run the embedded engine, which needs
        # no workgroup or catalogue.
        engine: EngineName = (
            "athena" if os.environ.get("ANALYTICS_ENGINE") == "athena" else "duckdb"
        )
        return cls(
            engine=engine,
            workgroup=env("ATHENA_WORKGROUP") if engine == "athena" else "",
            database=env("GLUE_DATABASE") if engine == "athena" else "",
            fresh_minutes=int(os.environ.get("ANALYTICS_FRESH_MINUTES", "15")),
        )
