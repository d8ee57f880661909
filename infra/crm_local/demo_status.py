"""Where the demo shop's loading stands, for the console and for `crm-local status`.

The demo loads in the background while the API already answers: customers are created, their
events sent and folded, then a first segment run computes tiers and RFM segments. Each step
is written to `.crm-local/demo.json` (private, replaced atomically) as it starts and as it
progresses, and the console prints a line when a step starts and when the demo is ready.
The dashboard's first read of the lake comes after `ready` (`lake_read_seconds` says when it
finished): every event is in the lake by then, and the read only fills the dashboard's cache.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from crm_local.private_files import write_private

STATUS_FILE = "demo.json"
State = Literal["loading", "ready", "failed"]


@dataclass(frozen=True)
class DemoStatus:
    state: State
    step: str  # what is loading now (or what failed); "segments computed" when ready
    done: int = 0
    total: int = 0
    customers: int = 0
    events: int = 0
    segment_run: str | None = None
    seconds: float = 0.0  # since the emulator started
    error: str = ""  # why it failed
    # when the dashboard's first read of the lake finished (seconds since the start): after
    # `ready`, since the lake holds every event by then and the read is only the dashboard's
    lake_read_seconds: float | None = None

    def line(self) -> str:
        if self.state == "ready":
            return (
                f"demo ready: seeded {self.customers} customers and {self.events} events (all "
                f"folded), segments computed (run {self.segment_run}), {self.seconds:.0f} s "
                "after start: GET /segments"
            )
        if self.state == "failed":
            why = f": {self.error}" if self.error else ""
            return f"demo loading FAILED while {self.step}{why}; the API still answers"
        progress = f" ({self.done}/{self.total})" if self.total else ""
        return f"demo loading: {self.step}{progress}; the API answers meanwhile"


def write_status(state_dir: Path, status: DemoStatus) -> None:
    write_private(state_dir / STATUS_FILE, json.dumps(asdict(status)).encode())


def read_status(state_dir: Path) -> DemoStatus | None:
    path = state_dir / STATUS_FILE
    try:
        return DemoStatus(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
