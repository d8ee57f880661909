"""The access bundle's files, and an audit entry's hash as written and as read back."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime
from decimal import Decimal

from crm.personal_data import StoreExport
from crm.privacy.bundle import build_bundle
from crm.privacy.records import GENESIS, AuditEntry
from crm.privacy.store import _numbers


def test_the_bundle_has_json_csv_and_explanations_per_store() -> None:
    exports = [
        StoreExport(
            store="segments",
            sections={"scores": [{"rfm": "555", "churn": 0.12}]},
            explanations={"tier": "高价值: 5 orders, 2,300.00 in a year"},
        ),
        StoreExport(
            store="profiles/main",
            sections={
                "orders": [
                    {"order_id": "o-1", "items": ["a", "b"]},
                    {"order_id": "o-2", "note": None},
                ]
            },
        ),
    ]
    with zipfile.ZipFile(io.BytesIO(build_bundle(exports))) as bundle:
        assert sorted(bundle.namelist()) == [
            "README.txt", "profiles_main/orders.csv", "profiles_main/orders.json",
            "segments/explanations.txt", "segments/scores.csv", "segments/scores.json",
        ]  # fmt: skip
        assert bundle.read("profiles_main/orders.csv").decode().splitlines() == [
            "order_id,items,note", 'o-1,"[""a"", ""b""]",', "o-2,,",
        ]  # fmt: skip
        assert json.loads(bundle.read("segments/scores.json")) == [{"rfm": "555", "churn": 0.12}]
        assert "高价值" in bundle.read("segments/explanations.txt").decode()


def test_an_entry_read_back_from_dynamodb_hashes_as_when_written() -> None:
    entry = AuditEntry(seq=1, at=datetime(2026, 11, 23, 2, tzinfo=UTC), actor="privacy-1",
                       action="request_completed", customer_id="c-1",
                       detail={"steps": {"orders": {"row": 2}}}, prev_hash=GENESIS)  # fmt: skip
    entry = entry.model_copy(update={"hash": entry.digest()})
    stored = entry.model_dump(mode="json")
    stored["seq"] = Decimal(1)
    stored["detail"] = {"steps": {"orders": {"row": Decimal(2)}}}
    again = AuditEntry.model_validate(_numbers(stored))
    assert again.digest() == entry.hash
    changed = again.model_copy(update={"actor": "someone"})
    assert changed.digest() != entry.hash
