"""Erasures replayed after a restore: a table restored to an earlier point in time (PITR, an
AWS Backup) brings back what the erasures completed since then had removed. The audit archive
survives any restore (a bucket under Object Lock, not a table), so it is the list of what to
do again: every `request_completed` entry of a real erasure at or after the restore point.

Each is run again store by store in the registry's order, then verified, on the customer's
subject as the restored data shows it (`collect_subject`: the restored profile, its identities
and merged profiles); when the profile itself is not back, on the request's frozen subject if
PrivacyTable still holds it, else on the customer id and pseudonym alone (the stores keyed by
them). Erasure is idempotent, so replaying twice, or an erasure the restore did not undo,
changes nothing. Each replay is audited (`erasure_replayed`, with the proof's summary).
"""

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from crm.errors import NotFound
from crm.models import Output
from crm.personal_data import DataSubject, PersonalDataStore
from crm.privacy.audit import AuditLog
from crm.privacy.records import AuditEntry
from crm.privacy.store import ArchivedObject, PrivacyFiles, PrivacyStore

REPLAYER = "erasure-replay"  # the actor the audit trail names
# Entries are numbered in the order they are appended, and stamped with the clock of the
# container that made them (a queued read: when it was read, up to minutes before its batch).
# The search for where a restore point falls starts this much earlier.
CLOCK_MARGIN = timedelta(hours=1)


class ReplayedErasure(Output):
    request_id: str
    customer_id: str
    completed_at: datetime
    subject_from: str  # "restored_profile", "frozen_request" or "customer_id"
    erased: dict[str, int]
    clean: bool


class ErasureReplay:
    def __init__(
        self,
        files: PrivacyFiles,
        requests: PrivacyStore,
        stores: Callable[[], Sequence[PersonalDataStore]],
        collect: Callable[[str], DataSubject],
        pseudonym: Callable[[str], str],
        audit: AuditLog,
    ) -> None:
        self._files, self._requests, self._stores = files, requests, stores
        self._collect, self._pseudonym, self._audit = collect, pseudonym, audit

    def completed_since(self, since: datetime) -> list[AuditEntry]:
        """The erasures completed at or after `since`, oldest first, from the archive: read
        from the object a binary search finds holding that time on, not the whole archive (a
        year of audited reads is hundreds of thousands of objects)."""
        objects = self._files.archive_objects()
        start = self._first_object_near(objects, since - CLOCK_MARGIN)
        entries = [
            AuditEntry.model_validate_json(raw)
            for raw in self._files.archived_after(0, objects[start:])
        ]
        return [
            e
            for e in entries
            if e.action == "request_completed"
            and e.at >= since
            and e.detail.get("kind") == "erasure"
            and not e.detail.get("dry_run")
            and e.customer_id is not None
            and e.request_id is not None
        ]

    def _first_object_near(self, objects: Sequence[ArchivedObject], at: datetime) -> int:
        """The index of the last object whose first entry is older than `at` (its later
        entries may not be), found by reading O(log n) objects' first entries: sequence
        numbers follow time, give or take the appenders' clocks (CLOCK_MARGIN)."""
        low, high = 0, len(objects)
        while low < high:
            mid = (low + high) // 2
            lines = self._files.archived_lines(objects[mid])
            first = AuditEntry.model_validate_json(lines[0]).at if lines else at
            if first < at:
                low = mid + 1
            else:
                high = mid
        return max(low - 1, 0)

    def replay(self, since: datetime) -> list[ReplayedErasure]:
        done: list[ReplayedErasure] = []
        for entry in self.completed_since(since):
            assert entry.customer_id is not None
            assert entry.request_id is not None
            subject, source = self._subject(entry.customer_id, entry.request_id)
            stores = self._stores()
            erased: dict[str, int] = {}
            for store in stores:
                result = store.erase(subject)
                for kind, n in {**result.erased, **result.anonymised}.items():
                    erased[f"{store.name}.{kind}"] = erased.get(f"{store.name}.{kind}", 0) + n
            proofs = [store.verify(subject) for store in stores]
            clean = all(p.clean for p in proofs)
            self._audit.append(
                REPLAYER,
                "erasure_replayed",
                customer_id=entry.customer_id,
                request_id=entry.request_id,
                why="restored_from_backup",
                detail={
                    "since": since.isoformat(),
                    "subject_from": source,
                    "erased": erased,
                    "proof": {
                        p.store: {"checked": p.checked, "remnants": len(p.remnants)} for p in proofs
                    },
                },
            )
            done.append(
                ReplayedErasure(
                    request_id=entry.request_id,
                    customer_id=entry.customer_id,
                    completed_at=entry.at,
                    subject_from=source,
                    erased=erased,
                    clean=clean,
                )
            )
        return done

    def _subject(self, customer_id: str, request_id: str) -> tuple[DataSubject, str]:
        try:
            return self._collect(customer_id), "restored_profile"
        except NotFound:
            pass
        record = self._requests.get(request_id)
        if record is not None:
            return record.subject, "frozen_request"
        return (
            DataSubject(customer_id=customer_id, pseudonym=self._pseudonym(customer_id)),
            "customer_id",
        )
