"""Two data regions side by side, as production runs them (one stack per region): each keeps its
own customers and sends the other's to the right API."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_local.template import ROOT
from tests.e2e.conftest import start_emulator

pytestmark = pytest.mark.e2e

TEMPLATE = ROOT / "template.yaml"


def test_two_region_stacks_keep_their_own_customers_apart(tmp_path: Path) -> None:
    body = {
        "identities": [{"channel": "app", "external_id": "berlin-1"}],
        "attributes": {"name": "Anna", "email": "anna@example.de"},
        "residency": "eu",
    }
    with (
        start_emulator(TEMPLATE, tmp_path / "cn", "--no-persist") as china,
        start_emulator(TEMPLATE, tmp_path / "eu", "--no-persist", "--data-region", "eu") as europe,
    ):
        assert china.api != europe.api
        refused = china.http("POST", "/customers", body, china.token("admin"))
        assert refused[0] == 421
        assert "eu region's API" in refused[1]["error"]["message"]

        status, created = europe.http("POST", "/customers", body, europe.token("admin"))
        assert status == 201
        cid = created["customer_id"]
        assert created["profile"]["residency"] == "eu"
        # Kept in Europe only: China's stack has never heard of this customer.
        assert china.http("GET", f"/customers/{cid}", token=china.token("admin"))[0] == 404
        home = {"identities": [{"channel": "app", "external_id": "hz-1"}]}
        status, local = china.http("POST", "/customers", home, china.token("admin"))
        assert (status, local["profile"]["residency"]) == (201, "cn")
        assert "Data region:   eu" in europe.log.read_text()
