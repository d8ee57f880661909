"""The data lake's personal data (`LakeBucket`) as the privacy registry sees it.

The lake holds no PII, only rows keyed by the customer's pseudonym (`customer_pid`): event rows
(`events/type=/dt=/part-<batch>.jsonl`) and segment scores (`segment_scores/run=/shard-n.jsonl`).
Under PIPL/GDPR a pseudonym is still personal data, so erasure removes every row carrying it by
rewriting each object that holds one (read, filter, put; the object is deleted when no row is
left). Objects of a format no `ObjectFormat` handles (the fitted models, `.json`) hold no
customer rows and are left alone.

Cost: every erasure lists the whole bucket and reads every object of a handled format (S3
GET per object, the bytes of the whole lake): fine for thousands of objects, hours and dollars
for millions. What would make it cheaper: a pseudonym -> object keys index written with each
object (a small DynamoDB item per (pseudonym, object), or a daily manifest per partition), so an
erasure reads and rewrites only the objects that hold the customer; compaction (the analytics
family's Parquet) also lowers the object count. Rewriting an object races a writer only if
one writes the same key, which never happens (each batch writes its own object names).

Formats: `JsonLines` here; the analytics family adds Parquet by passing its own format in the
list (`crm.privacy.registry.LAKE_FORMATS`): `handles` = `.parquet` keys, `rows` = the table as
dicts, `without` = the table filtered by a mask of the positions (its schema kept).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence, Set
from dataclasses import dataclass
from typing import Any, Protocol

from crm.erasure import Identifiers
from crm.lake import Lake
from crm.personal_data import (
    DataSubject,
    ErasureMethod,
    Holding,
    Remnant,
    StoreErasure,
    StoreExport,
    StoreInventory,
    StoreVerification,
)


class ObjectFormat(Protocol):
    """How rows are stored in one kind of lake object."""

    def handles(self, key: str) -> bool: ...

    def rows(self, body: bytes) -> list[dict[str, Any]]:
        """The object's rows, in order (read to find and export a customer's)."""
        ...

    def without(self, body: bytes, drop: Set[int]) -> bytes:
        """The object rewritten without the rows at these positions, in its own format and
        schema (a Parquet format filters its table instead of rebuilding it from dicts)."""
        ...

    @property
    def content_type(self) -> str: ...


class JsonLines:
    content_type = "application/x-ndjson"

    def handles(self, key: str) -> bool:
        return key.endswith(".jsonl")

    def rows(self, body: bytes) -> list[dict[str, Any]]:
        return [json.loads(line) for line in body.decode().splitlines() if line.strip()]

    def without(self, body: bytes, drop: Set[int]) -> bytes:
        kept = [row for n, row in enumerate(self.rows(body)) if n not in drop]
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept).encode()


@dataclass(frozen=True)
class _Object:
    key: str
    format: ObjectFormat
    body: bytes
    rows: list[dict[str, Any]]
    matching: list[int]  # indexes of the rows that carry the pseudonym


class LakePersonalData:
    """Rows of the lake that carry a customer's pseudonym."""

    name = "lake"
    claims = ("LakeBucket",)

    def __init__(
        self,
        bucket: str,
        formats: Sequence[ObjectFormat] = (JsonLines(),),
        pseudonym: Callable[[str], str] | None = None,
    ) -> None:
        self._lake = Lake(bucket)
        self._formats = tuple(formats)
        # The pseudonyms of profiles merged into the customer (their rows keep their own).
        self._pseudonym = pseudonym

    def _pseudonyms(self, subject: DataSubject) -> Identifiers:
        found = {subject.pseudonym}
        if self._pseudonym is not None:
            found |= {self._pseudonym(merged) for merged in subject.merged_ids}
        return Identifiers.named((p, "pseudonym") for p in sorted(found))

    def _keys(self) -> Iterator[tuple[str, ObjectFormat]]:
        for key in self._lake.keys(prefix=""):
            for fmt in self._formats:
                if fmt.handles(key):
                    yield key, fmt
                    break

    def _objects(self, subject: DataSubject) -> Iterator[_Object]:
        """Every handled object, with the rows that carry the pseudonym (any field: event
        rows call it `customer_pid`, other writers may not)."""
        pseudonym = self._pseudonyms(subject)
        for key, fmt in self._keys():
            body = self._lake.read(key)
            if body is None:
                continue  # deleted since the listing
            rows = fmt.rows(body)
            matching = [n for n, row in enumerate(rows) if pseudonym.find(row)]
            yield _Object(key, fmt, body, rows, matching)

    def inventory(self, subject: DataSubject) -> StoreInventory:
        count = sum(len(o.matching) for o in self._objects(subject))
        holdings = (Holding(kind="lake_row", count=count, erasure=ErasureMethod.DELETE),)
        return StoreInventory(store=self.name, holdings=holdings if count else ())

    def export(self, subject: DataSubject) -> StoreExport:
        rows = [
            {"object": o.key, **{k: _flat(v) for k, v in o.rows[n].items()}}
            for o in self._objects(subject)
            for n in o.matching
        ]
        return StoreExport(
            store=self.name,
            sections={"analytics_rows": rows},
            explanations={
                "analytics_rows": "Events and scores kept for analytics under a pseudonym "
                "(a keyed hash of your customer id), without your name or contact details."
            },
        )

    def erase(self, subject: DataSubject) -> StoreErasure:
        removed = 0
        for o in self._objects(subject):
            if not o.matching:
                continue
            if len(o.matching) < len(o.rows):
                self._lake.write(
                    o.key, o.format.without(o.body, set(o.matching)), o.format.content_type
                )
            else:
                self._lake.delete(o.key)
            removed += len(o.matching)
        return StoreErasure(store=self.name, erased={"lake_row": removed} if removed else {})

    def verify(self, subject: DataSubject) -> StoreVerification:
        checked = 0
        remnants: list[Remnant] = []
        for o in self._objects(subject):
            checked += 1
            remnants += [
                Remnant(
                    kind="lake_row", location=f"LakeBucket/{o.key}#{n}", identifier_kind="pseudonym"
                )
                for n in o.matching
            ]
        return StoreVerification(store=self.name, checked=checked, remnants=tuple(remnants))


def _flat(value: Any) -> Any:
    """A CSV-able cell: nested values as JSON text."""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value
