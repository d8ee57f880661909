"""State kept between runs of the emulator, and the demo shop loaded through the API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from crm_local.demo_status import DemoStatus, read_status
from crm_local.seed import Shop
from crm_local.state import STATE_FILE
from crm_local.template import ROOT
from tests.e2e.conftest import CLI, Running, start_emulator, wait_for

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


def test_a_killed_emulator_keeps_what_it_saved(tmp_path: Path) -> None:
    """Killed (kill -9, a frozen process), the emulator kept nothing of its session: it saved
    only when it stopped. It now saves every --save-every seconds while its state changes."""
    state = tmp_path / "state"
    state.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with (state / "first.log").open("w") as log:
        process = subprocess.Popen(
            [*CLI, "--state-dir", str(state), "--template", str(TEMPLATE), "up", "--port", "0",
             "--save-every", "1"],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env, start_new_session=True,
        )  # fmt: skip
        try:
            info = state / "emulator.json"
            wait_for(lambda: info.exists() or process.poll() is not None, timeout=90)
            api = json.loads(info.read_text())["api"]
            first = Running(api, "", state, TEMPLATE, state / "first.log")
            body = {"identities": [{"channel": "app", "external_id": "kept-after-kill"}]}
            status, created = first.http("POST", "/customers", body, first.token("admin"))
            assert status == 201
            written = (state / STATE_FILE).stat().st_mtime
            wait_for(lambda: (state / STATE_FILE).stat().st_mtime > written, timeout=30)
        finally:
            os.killpg(process.pid, signal.SIGKILL)  # the CLI and its moto process, unwarned
            process.wait(timeout=30)
    (state / "emulator.json").unlink()  # the killed run's address, which start_emulator waits on
    with start_emulator(TEMPLATE, state, "--port", "0") as second:
        found = second.http("GET", f"/customers/{created['customer_id']}",
                            token=second.token("admin"))  # fmt: skip
        assert found[0] == 200


def test_a_demo_its_run_never_saved_is_loaded_again(tmp_path: Path) -> None:
    """A run killed after loading the demo left the `seeded` mark and no saved state: the next
    run said "demo ready" over empty tables. Now a run that restores nothing loads it."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "seeded").write_text(json.dumps({"customers": 3, "events": 9}))
    with start_emulator(TEMPLATE, state, "--port", "0", "--seed", "3") as running:

        def settled() -> DemoStatus | None:
            status = read_status(state)
            return status if status and status.state in ("ready", "failed") else None

        demo = wait_for(settled, timeout=240)
        assert (demo.state, demo.customers) == ("ready", 3)
        first = Shop(seed=7).customers(3)[0]
        status, found = running.http("POST", "/customers", {"identities": first.identities[:1]},
                                     running.token("admin"))  # fmt: skip
        assert (status, found["created"]) == (200, False)
