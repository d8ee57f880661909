"""One after-sales vocabulary: an event's reason code, a case's reason and the dashboard's
complaint chart name the same reasons, and rows the lake kept from before codes were mapped
chart as the reason they stand for."""

from __future__ import annotations

import re

import duckdb
import pytest

from crm.aftersales_codes import REASON_ALIASES, ReturnReason, reason_of, reason_sql
from crm_local.template import ROOT

CODES = [*(r.value for r in ReturnReason), *REASON_ALIASES, "size", "Damaged", " LATE ",
         "whatever", "other"]  # fmt: skip


@pytest.mark.parametrize(
    ("code", "reason"),
    [("damaged", "damaged_in_transit"), ("quality", "defective"), ("defective", "defective"),
     ("Late", "late_delivery"), ("size", "other"), ("anything-else", "other")],
)  # fmt: skip
def test_an_event_code_stands_for_one_reason_of_the_list(code: str, reason: str) -> None:
    assert reason_of(code) == reason


def test_the_lake_reads_old_codes_as_the_events_now_store_them() -> None:
    # The codes are parameters; the SQL is the vocabulary's own text, as metrics.py embeds it.
    sql = f"SELECT r, {reason_sql('r')} FROM (SELECT unnest(?) AS r)"  # noqa: S608
    rows = duckdb.execute(sql, [CODES]).fetchall()
    assert dict(rows) == {c: reason_of(c).value for c in CODES}


def test_the_dashboard_names_every_reason_in_both_languages() -> None:
    app = (ROOT / "dashboard" / "app.js").read_text()
    block = app[app.index("const X_LABELS = {") : app.index("const xLabel")]
    english, chinese = block.split("zh: {")
    for reason in ReturnReason:
        assert re.search(rf"\b{reason.value}: \"", english), reason
        assert re.search(rf"\b{reason.value}: \"", chinese), reason
