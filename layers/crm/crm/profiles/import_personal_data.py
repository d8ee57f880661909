"""The customers a historical import's staged body lists (ImportsBucket), as the privacy
registry sees them.

The body waits there while the import runs: minutes, or up to 2 days (the bucket's lifecycle
rule) when an import failed and may be retried. A customer is found in it the way the profile
finds its identities: by their keys (the blind index of a phone or email, the channel id of
the rest), so the subject's frozen identifiers are enough. Erasure takes the customer out of
the body (or deletes a body left with no customer), so a retried import cannot bring an erased
customer back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

from crm import aws
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
from crm.profiles.import_models import HistoryImport, ImportCustomer
from crm.profiles.import_store import STAGED_PREFIX, StagedImports

KIND = "staged_import_customer"


class _Staged(NamedTuple):
    import_id: str
    key: str
    body: HistoryImport
    found: list[tuple[ImportCustomer, str]]  # the subject's entries, with the kind of key


class StagedImportsPersonalData:
    name = "staged_imports"
    claims = ("ImportsBucket",)

    def __init__(self, bucket: str, keys_of: Callable[[ImportCustomer], set[str]]) -> None:
        self._bucket = bucket
        self._staged = StagedImports(bucket)
        self._keys_of = keys_of

    def _search(self, subject: DataSubject) -> Iterator[_Staged]:
        """Every staged body, with the entries naming the subject (maybe none)."""
        blind, external = set(subject.blind_indexes), set(subject.external_ids)
        for key in aws.object_keys(self._bucket, STAGED_PREFIX):
            raw = aws.object_body(self._bucket, key)
            if raw is None:
                continue  # the import finished meanwhile
            body = HistoryImport.model_validate_json(raw)
            found = []
            for customer in body.customers:
                keys = self._keys_of(customer)
                if keys & blind:
                    found.append((customer, "blind_index"))
                elif keys & external:
                    found.append((customer, "external_id"))
            import_id = key.removeprefix(STAGED_PREFIX).removesuffix(".json")
            yield _Staged(import_id, key, body, found)

    def inventory(self, subject: DataSubject) -> StoreInventory:
        count = sum(len(s.found) for s in self._search(subject))
        holding = Holding(kind=KIND, count=count, erasure=ErasureMethod.DELETE)
        return StoreInventory(store=self.name, holdings=(holding,) if count else ())

    def export(self, subject: DataSubject) -> StoreExport:
        rows = [
            {
                "import_id": s.import_id,
                "ref": c.ref,
                "events": len(c.events),
                "consent": [d.model_dump(mode="json") for d in c.consent],
            }
            for s in self._search(subject)
            for c, _ in s.found
        ]
        return StoreExport(store=self.name, sections={"staged_imports": rows} if rows else {})

    def erase(self, subject: DataSubject) -> StoreErasure:
        erased = 0
        for staged in list(self._search(subject)):
            if not staged.found:
                continue
            gone = {c.ref for c, _ in staged.found}
            kept = [c for c in staged.body.customers if c.ref not in gone]
            if kept:
                self._staged.put(staged.import_id, HistoryImport.model_construct(customers=kept))
            else:
                self._staged.delete(staged.import_id)
            erased += len(staged.found)
        return StoreErasure(store=self.name, erased={KIND: erased} if erased else {})

    def verify(self, subject: DataSubject) -> StoreVerification:
        checked, remnants = 0, []
        for staged in self._search(subject):
            checked += 1
            remnants += [
                Remnant(kind=KIND, location=f"{self._bucket}/{staged.key}", identifier_kind=kind)
                for _, kind in staged.found
            ]
        return StoreVerification(store=self.name, checked=checked, remnants=tuple(remnants))
