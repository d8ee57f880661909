"""State kept between runs of the emulator, and the demo shop loaded through the API."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_local.seed import Shop
from crm_local.template import ROOT
from tests.e2e.conftest import Running, start_emulator

pytestmark = pytest.mark.e2e

TEMPLATE = ROOT / "template.yaml"


def test_state_survives_a_restart_unless_reset(tmp_path: Path) -> None:
    state = tmp_path / "state"
    body = {"identities": [{"channel": "douyin", "external_id": "dy-keep"}],
            "attributes": {"phone": "13700001111"}}  # fmt: skip
    with start_emulator(TEMPLATE, state, "--port", "0") as first:
        status, created = first.http("POST", "/customers", body, first.token("admin"))
        assert status == 201
    cid = created["customer_id"]
    with start_emulator(TEMPLATE, state, "--port", "0") as second:
        status, view = second.http("GET", f"/customers/{cid}", token=second.token("support_agent"))
        assert status == 200
        assert view["attributes"]["phone"] == "+8613700001111"  # the KMS key came back too
    with start_emulator(TEMPLATE, state, "--port", "0", "--reset") as third:
        assert third.http("GET", f"/customers/{cid}", token=third.token("admin"))[0] == 404


def test_seed_loads_the_demo_shop_through_the_api(emulator: Running) -> None:
    out = emulator.cli("seed", "--customers", "15")
    assert "seeded 15 customers" in out
    shop = Shop(seed=7).customers(15)
    first = shop[0]
    status, found = emulator.http(
        "POST", "/customers", {"identities": first.identities[:1]}, emulator.token("admin")
    )
    assert (status, found["created"]) == (200, False)
    paid = [e for e in first.events if e["type"] == "order_paid"]
    assert found["profile"]["orders"]["order_count"] == len(paid)
