"""The privacy family's own stores of customer data, as the registry sees them.

PrivacyTable holds the customer's requests (with their frozen DataSubject) and the audit
trail; both are kept after an erasure on purpose: they are the proof that the customer's
rights were honoured (GDPR Art. 5(2) and 30, PIPL Art. 54-55), and hold ids and keyed hashes
only. ExportsBucket holds the customer's access bundles: erased. AuditArchiveBucket keeps the
audit entries under Object Lock: nothing can delete them before their retention ends.
"""

from __future__ import annotations

from typing import Any

from crm.personal_data import (
    DataSubject,
    ErasureMethod,
    Holding,
    PersonalDataStore,
    Remnant,
    StoreErasure,
    StoreExport,
    StoreInventory,
    StoreVerification,
)
from crm.privacy.store import PrivacyFiles, PrivacyStore

RETAINED_BECAUSE = (
    "accountability: the record that the customer's request was handled (GDPR Art. 5(2), "
    "PIPL Art. 54-55); ids and keyed hashes only"
)


class PrivacyOwnData:
    """Requests and export bundles of one customer."""

    name = "privacy"
    claims = ("PrivacyTable", "ExportsBucket", "AuditArchiveBucket")

    def __init__(self, store: PrivacyStore, files: PrivacyFiles) -> None:
        self._store, self._files = store, files

    def _export_keys(self, subject: DataSubject) -> list[str]:
        keys: list[str] = []
        for customer_id in (subject.customer_id, *subject.merged_ids):
            for record in self._store.for_customer(customer_id):
                keys.extend(self._files.export_keys(f"exports/{record.request_id}/"))
        return keys

    def inventory(self, subject: DataSubject) -> StoreInventory:
        requests = len(self._store.for_customer(subject.customer_id))
        return StoreInventory(
            store=self.name,
            holdings=(
                Holding(
                    kind="privacy_request",
                    count=requests,
                    erasure=ErasureMethod.ANONYMISE_RETAIN,
                    retained_because=RETAINED_BECAUSE,
                ),
                Holding(
                    kind="export_file",
                    count=len(self._export_keys(subject)),
                    erasure=ErasureMethod.DELETE,
                ),
            ),
        )

    def export(self, subject: DataSubject) -> StoreExport:
        rows = [
            {
                "request_id": r.request_id,
                "kind": r.kind.value,
                "regulation": r.regulation.value,
                "status": r.status.value,
                "filed_at": r.filed_at.isoformat(),
                "due_at": r.due_at.isoformat(),
                "completed_at": r.completed_at.isoformat() if r.completed_at else None,
            }
            for r in self._store.for_customer(subject.customer_id)
        ]
        return StoreExport(store=self.name, sections={"privacy_requests": rows})

    def erase(self, subject: DataSubject) -> StoreErasure:
        keys = self._export_keys(subject)
        # A key S3 could not delete is not counted as erased; verification names it.
        left = self._files.delete_exports(keys) if keys else []
        requests = len(self._store.for_customer(subject.customer_id))
        return StoreErasure(
            store=self.name,
            erased={"export_file": len(keys) - len(left)},
            anonymised={"privacy_request": requests},
        )

    def verify(self, subject: DataSubject) -> StoreVerification:
        keys = self._export_keys(subject)
        remnants = tuple(
            Remnant(
                kind="export_file", location=f"ExportsBucket/{key}", identifier_kind="customer_id"
            )
            for key in keys
        )
        return StoreVerification(store=self.name, checked=len(keys), remnants=remnants)


def own_stores(root: Any) -> tuple[PersonalDataStore, ...]:
    """The privacy family's stores for the registry (`crm.privacy.registry`), built from the
    composition root (typed loosely: privacy sits below the root and may not import it)."""
    return (PrivacyOwnData(root.privacy_store, root.privacy_files),)
