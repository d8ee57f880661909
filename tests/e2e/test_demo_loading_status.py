"""`crm-local up --seed N` says what is loading while the API already answers, then that the
demo is ready, with its segments computed."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from crm_local.demo_status import STATUS_FILE
from crm_local.template import ROOT
from tests.e2e.conftest import start_emulator, wait_for

pytestmark = pytest.mark.e2e

CUSTOMERS = 8


def test_the_status_says_loading_then_ready_with_segments_computed(tmp_path: Path) -> None:
    state = tmp_path / "state"
    flags = ("--no-persist", "--seed", str(CUSTOMERS))
    with start_emulator(ROOT / "template.yaml", state, *flags) as running:
        first = running.cli("status")
        assert "demo loading" in first, first
        analyst = running.token("analyst")
        status, listing = running.http("GET", "/segments", token=analyst)
        assert status == 200  # the API answers while the demo loads
        assert listing["latest_run"] is None

        ready = wait_for(lambda: "demo ready" in (s := running.cli("status")) and s, timeout=240)
        assert f"seeded {CUSTOMERS} customers" in ready
        assert "segments computed (run " in ready

        _, listing = running.http("GET", "/segments", token=analyst)
        assert listing["latest_run"] is not None
        assert listing["latest_run"] in ready
        tiers = sum(s["size"] for s in listing["segments"] if s["name"].startswith("tier:"))
        assert tiers == CUSTOMERS
        console = running.log.read_text()
        assert "demo loading: importing customers and their history" in console
        assert console.index("demo loading") < console.index("demo ready")
        assert stat.S_IMODE((state / STATUS_FILE).stat().st_mode) == 0o600
