"""The timers' resources, from the environment template.yaml sets.

A family names its timer kind and the queue that wakes it in the template, never in code the
platform imports: `TIMER_QUEUE_<KIND>: !Ref <its queue>` among the Globals' variables makes
kind `<kind>` (lower case) known to every function, the sweep included.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from crm.config import env

KIND_PREFIX = "TIMER_QUEUE_"


def kinds_from(environ: Mapping[str, str]) -> dict[str, str]:
    """kind -> the URL of the queue its wake-ups go to."""
    return {
        name[len(KIND_PREFIX) :].lower(): url
        for name, url in environ.items()
        if name.startswith(KIND_PREFIX) and url
    }


@dataclass(frozen=True)
class TimersSettings:
    timers_table: str
    sweep_queue_url: str
    kinds: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> TimersSettings:
        return cls(
            timers_table=env("TIMERS_TABLE"),
            sweep_queue_url=env("TIMER_SWEEP_QUEUE_URL"),
            kinds=kinds_from(os.environ),
        )
