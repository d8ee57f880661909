"""The tickets family's resources, from the environment template.yaml sets."""

from __future__ import annotations

from typing import NamedTuple

from crm.config import env


class TicketsSettings(NamedTuple):
    tickets_table: str

    @classmethod
    def from_env(cls) -> TicketsSettings:
        return cls(tickets_table=env("TICKETS_TABLE"))
