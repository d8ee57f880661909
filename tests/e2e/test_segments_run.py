"""The scheduled segment run end to end in the emulator: fire the schedule, read segments."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Running, wait_for

pytestmark = pytest.mark.e2e


def test_firing_the_nightly_schedule_fills_the_segments(emulator: Running) -> None:
    admin = emulator.token("admin")
    for n in range(12):
        _, created = emulator.http("POST", "/customers", {"identities": [
            {"channel": "app", "external_id": f"seg-{n}"}]}, admin)  # fmt: skip
        cid = created["customer_id"]
        events = [
            {"event_id": f"seg-{n}-{k}", "type": "order_paid", "order_id": f"seg-{n}-{k}",
             "customer_id": cid, "amount": str(50 * (n + 1)),
             "occurred_at": f"2026-{1 + k * 3 % 11:02d}-{1 + n:02d}T10:00:00Z"}
            for k in range(1 + n % 4)
        ]  # fmt: skip
        assert emulator.http("POST", "/events", {"events": events}, admin)[0] == 202
    analyst = emulator.token("analyst")

    def folded() -> bool:
        _, view = emulator.http("GET", f"/customers/{cid}", token=admin)
        return bool(view["orders"]["order_count"] == 1 + 11 % 4)

    wait_for(folded)
    before = emulator.http("GET", "/segments", token=analyst)[1]["latest_run"]
    assert "crm-segments-nightly-dev" in emulator.cli("fire", "crm-segments-nightly-dev")

    def finished() -> dict[str, Any] | None:
        _, listing = emulator.http("GET", "/segments", token=analyst)
        return listing if listing["latest_run"] not in (None, before) else None

    listing = wait_for(finished, timeout=60)
    sizes = {s["name"]: s["size"] for s in listing["segments"]}
    assert sum(n for name, n in sizes.items() if name.startswith("tier:")) >= 12
    _, one = emulator.http("GET", f"/customers/{cid}", token=analyst)
    assert one["scores"] is not None
    assert any(s.startswith("tier:") for s in one["segments"])
