"""The restore drill (docs/operations.md): back up a running emulator's tables and lake, start
a fresh one that keeps only the account's keys, restore, and find the customer whole."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from crm_local.template import ROOT
from tests.e2e.conftest import CLI, Running, start_emulator, wait_for

pytestmark = pytest.mark.e2e

TEMPLATE = ROOT / "template.yaml"


def _customer_with_history(suite: Running) -> tuple[str, dict[str, Any], dict[str, Any]]:
    admin = suite.token("admin")
    status, created = suite.http(
        "POST",
        "/customers",
        {"identities": [{"channel": "app", "external_id": "drill-1"}],
         "attributes": {"name": "周晓", "phone": "13611112222"}},
        admin,
    )  # fmt: skip
    assert status == 201
    cid = created["customer_id"]
    events = [
        {"event_id": "drill-e1", "type": "order_paid", "order_id": "drill-o1", "customer_id": cid,
         "amount": "199.00", "occurred_at": "2026-11-20T12:00:00+08:00",
         "items": [{"sku": "tea-1", "category": "茶", "quantity": 1, "unit_price": "199.00"}]},
        {"event_id": "drill-e2", "type": "product_viewed", "customer_id": cid, "sku": "tea-2",
         "occurred_at": "2026-11-21T08:00:00+08:00"},
    ]  # fmt: skip
    assert suite.http("POST", "/events", {"events": events}, admin)[0] == 202
    change = {"txn_id": "drill-p1", "kind": "earn", "points": 120, "reason": "drill"}
    assert suite.http("POST", f"/customers/{cid}/points", change, admin)[0] == 200

    def folded() -> dict[str, Any] | None:
        # The 360° view reads the profile, then its timeline (two requests): under load a fold
        # can land between them, so a view showing both events may still miss the order's
        # aggregates. Wait for both.
        _, view = suite.http("GET", f"/customers/{cid}", token=admin)
        done = len(view["timeline"]) == 2 and view["orders"]["order_count"] == 1
        return view if done else None

    view = wait_for(folded)
    _, points = suite.http("GET", f"/customers/{cid}/points", token=admin)
    return cid, view, points


def _refused(state: Path, *args: str) -> str:
    """What the CLI says when it refuses (exit status 2, one line on stderr)."""
    done = subprocess.run(
        [*CLI, "--state-dir", str(state), *args],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    return done.stderr


def _lake_keys(suite: Running) -> list[str]:
    s3 = suite.aws("s3")
    info = json.loads((suite.state_dir / "emulator.json").read_text())
    listed = s3.list_objects_v2(Bucket=info["buckets"]["LakeBucket"])
    return sorted(entry["Key"] for entry in listed.get("Contents", []))


def test_a_profile_its_points_and_timeline_survive_backup_and_restore(tmp_path: Path) -> None:
    state, snapshot = tmp_path / "state", tmp_path / "snapshot"
    with start_emulator(TEMPLATE, state, "--port", "0") as first:
        cid, view, points = _customer_with_history(first)
        # Both events reached the lake (each type is its own object, written as it folds).
        wait_for(lambda: {"type=order_paid", "type=product_viewed"}
                 <= {key.split("/")[1] for key in _lake_keys(first)})  # fmt: skip
        out = first.cli("backup", str(snapshot))
        lake = _lake_keys(first)
        assert out.startswith("backed up ")
        assert "lake objects" in out
        # A snapshot goes into a new folder: it never mixes two backups.
        assert "not empty" in _refused(state, "backup", str(snapshot))
    manifest = json.loads((snapshot / "manifest.json").read_text())
    assert manifest["items"]["CustomersTable"] > 0
    assert (snapshot.stat().st_mode & 0o077) == 0  # sealed PII and keys' wrappings: private

    with start_emulator(TEMPLATE, state, "--port", "0", "--fresh-data") as second:
        admin = second.token("admin")
        assert second.http("GET", f"/customers/{cid}", token=admin)[0] == 404  # fresh tables
        assert _lake_keys(second) == []
        assert second.cli("restore", str(snapshot)).startswith("restored ")

        status, restored = second.http("GET", f"/customers/{cid}", token=admin)
        assert status == 200
        # The account's key came through: the sealed phone opens again.
        assert restored["attributes"]["phone"] == "+8613611112222"
        assert restored["timeline"] == view["timeline"]
        assert restored["orders"] == view["orders"]
        assert second.http("GET", f"/customers/{cid}/points", token=admin) == (200, points)
        assert _lake_keys(second) == lake
        # Restoring twice would duplicate nothing: it refuses tables that hold items.
        assert "fresh emulator" in _refused(state, "restore", str(snapshot))
        # The restored profile keeps working: a new event folds on top of its history.
        event = {"event_id": "drill-e3", "type": "product_viewed", "customer_id": cid,
                 "sku": "tea-3", "occurred_at": "2026-11-22T08:00:00+08:00"}  # fmt: skip
        assert second.http("POST", "/events", {"events": [event]}, admin)[0] == 202

        def refolded() -> bool:
            return len(second.http("GET", f"/customers/{cid}", token=admin)[1]["timeline"]) == 3

        wait_for(refolded)
