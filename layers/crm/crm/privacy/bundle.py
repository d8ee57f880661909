"""The access bundle: every store's export as JSON and CSV files in one zip.

Layout: `README.txt`, then per store `<store>/<section>.json` and `<store>/<section>.csv`
(one row per record, columns the union of the records' keys; nested values as JSON text),
and `<store>/explanations.txt` for the automated decisions the store made about the customer.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Sequence
from typing import Any

from crm.personal_data import StoreExport

_SAFE = re.compile(r"[^A-Za-z0-9_.\-]")

README = """Your personal data, as this shop's CRM holds it.

Each folder is one store of data; each section is there as JSON (complete) and CSV (for a
spreadsheet). explanations.txt, where present, says what an automated decision about you
(a tier, a score) means and which figures it came from.
"""


def _name(text: str) -> str:
    return _SAFE.sub("_", text) or "_"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return str(value)


def _csv(records: Sequence[dict[str, Any]]) -> str:
    columns: list[str] = []
    for record in records:
        columns.extend(k for k in record if k not in columns)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for record in records:
        writer.writerow([_cell(record.get(column)) for column in columns])
    return out.getvalue()


def build_bundle(exports: Sequence[StoreExport]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", README)
        for export in sorted(exports, key=lambda e: e.store):
            folder = _name(export.store)
            for section, records in sorted(export.sections.items()):
                base = f"{folder}/{_name(section)}"
                text = json.dumps(records, ensure_ascii=False, indent=2, default=str)
                archive.writestr(f"{base}.json", text)
                archive.writestr(f"{base}.csv", _csv(records))
            if export.explanations:
                lines = [f"{what}: {why}" for what, why in sorted(export.explanations.items())]
                archive.writestr(f"{folder}/explanations.txt", "\n\n".join(lines) + "\n")
    return buffer.getvalue()
