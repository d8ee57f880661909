"""A customer's rows in the lake's Parquet, for the privacy family's erasure (the integrator
wires these into the personal-data registry): find them (read only) and rewrite each file
without them. The JSON Lines the Parquet is built from are the lake's own erasure's to rewrite;
Parquet is rebuilt from them, so both must be erased (docs/analytics.md)."""

from __future__ import annotations

import pyarrow.compute as pc

from crm.analytics import parquet
from crm.analytics.store import LakeFiles


def _matches(files: LakeFiles, pseudonym: str) -> list[tuple[str, int, int]]:
    """(key, rows in the file, rows of the pseudonym) of every Parquet file naming it."""
    found = []
    for key in files.keys("parquet/"):
        if not key.endswith(".parquet"):
            continue
        body = files.read(key)
        if body is None:
            continue
        data = parquet.from_parquet(body)
        if "customer_pid" not in data.column_names:
            continue
        hits = pc.sum(pc.equal(data["customer_pid"], pseudonym)).as_py() or 0
        found.append((key, data.num_rows, int(hits)))
    return found


def find_pseudonym_in_parquet(bucket: str, pseudonym: str) -> tuple[int, int]:
    """(Parquet objects checked, rows naming the pseudonym): read only."""
    found = _matches(LakeFiles(bucket), pseudonym)
    return len(found), sum(hits for _, _, hits in found)


def erase_pseudonym_from_parquet(bucket: str, pseudonym: str) -> tuple[int, int]:
    """Rewrite every Parquet object naming the pseudonym without its rows; (objects checked,
    rows removed). Idempotent: a second run finds nothing to remove."""
    files = LakeFiles(bucket)
    found = _matches(files, pseudonym)
    removed = 0
    for key, rows, hits in found:
        if not hits:
            continue
        data = parquet.from_parquet(files.read(key) or b"")
        keep = data.filter(
            pc.invert(pc.fill_null(pc.equal(data["customer_pid"], pseudonym), False))
        )
        if keep.num_rows:
            files.write(key, parquet.to_parquet(keep), "application/vnd.apache.parquet")
        else:
            files.delete(key)
        removed += rows - keep.num_rows
    return len(found), removed
