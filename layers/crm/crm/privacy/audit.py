"""The privacy audit trail: append-only, hash-chained entries in PrivacyTable, each also
archived to AuditArchiveBucket, whose Object Lock keeps it unchanged for years.

Each entry carries the previous entry's hash, and its own hash covers its content and that
link: changing, removing or reordering any entry breaks every link after it, which `verify`
finds (and names the first broken one). Two writers never fork the chain: an entry is put
only if its sequence number is still free (a conditional put); the loser re-reads the head
and links to it. One partition holds the chain.

Privacy actions are rare (hundreds a day) and append as they happen. Staff's unmasked PII
reads are not: every agent opening a profile would contend for the head. So a read queues one
note (`crm.privacy.reads`, AuditQueue) before its answer leaves, and one consumer appends the
notes in batches (`append_reads`): one head read, one TransactWriteItems of up to 50 linked
entries with a marker per read (a redelivered note is appended once), one archive object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from aws_lambda_powertools import Logger

from crm.clock import Clock
from crm.errors import Unavailable
from crm.privacy.models import AuditEntryView, AuditPage, AuditVerification
from crm.privacy.read_notes import PiiReadNote
from crm.privacy.records import GENESIS, AuditEntry
from crm.privacy.store import PrivacyFiles, PrivacyStore

logger = Logger(child=True)

APPEND_ATTEMPTS = 10
VERIFY_PAGE = 500
# Reads appended by one transaction: an entry and a marker each, 100 items at most.
READS_PER_APPEND = 50
# A read's marker outlives every redelivery of its note (SQS keeps a message 14 days at most).
READ_MARKER_KEEP = timedelta(days=15)


class AuditLog:
    def __init__(self, store: PrivacyStore, files: PrivacyFiles, clock: Clock) -> None:
        self._store, self._files, self._clock = store, files, clock

    def append(
        self,
        actor: str,
        action: str,
        *,
        customer_id: str | None = None,
        request_id: str | None = None,
        fields: Sequence[str] = (),
        why: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        for _ in range(APPEND_ATTEMPTS):
            head = self._store.last_audit()
            entry = AuditEntry(
                seq=(head.seq + 1) if head else 1,
                at=self._clock(),
                actor=actor,
                action=action,
                customer_id=customer_id,
                request_id=request_id,
                fields=sorted(fields),
                why=why,
                detail=dict(detail or {}),
                prev_hash=head.hash if head else GENESIS,
            )
            entry = entry.model_copy(update={"hash": entry.digest()})
            if self._store.put_audit(entry):
                self._files.archive(entry)
                return entry
        raise Unavailable("the audit trail is busy; try again shortly")

    def append_reads(self, notes: Sequence[PiiReadNote]) -> list[AuditEntry]:
        """Staff's unmasked reads, appended in the order given, READS_PER_APPEND to a
        transaction, each batch archived as one object. A read already in the chain (its note
        delivered again) is not appended again; its archive copy is written again, in case the
        earlier attempt stopped between the transaction and the archive."""
        appended: list[AuditEntry] = []
        unique = list({note.read_id: note for note in notes}.values())
        for start in range(0, len(unique), READS_PER_APPEND):
            appended += self._append_batch(unique[start : start + READS_PER_APPEND])
        return appended

    def _append_batch(self, notes: Sequence[PiiReadNote]) -> list[AuditEntry]:
        pending = list(notes)
        for _ in range(APPEND_ATTEMPTS):
            if not pending:
                return []
            head = self._store.last_audit()
            entries: list[AuditEntry] = []
            for note in pending:
                prev = entries[-1] if entries else head
                entry = AuditEntry(
                    seq=(prev.seq + 1) if prev else 1,
                    at=note.at,
                    actor=note.actor,
                    action="pii_read",
                    customer_id=note.customer_id,
                    fields=sorted(note.fields),
                    why=note.why,
                    detail={"read_id": note.read_id},
                    prev_hash=prev.hash if prev else GENESIS,
                )
                entries.append(entry.model_copy(update={"hash": entry.digest()}))
            expires = int((self._clock() + READ_MARKER_KEEP).timestamp())
            failed = self._store.put_audit_batch(entries, [n.read_id for n in pending], expires)
            if failed is None:
                self._files.archive_batch(entries)
                return entries
            _, seen = failed
            if seen:
                self._archive_again(sorted(self._store.audited_reads(sorted(seen)).values()))
                pending = [note for note in pending if note.read_id not in seen]
        raise Unavailable("the audit trail is busy; try again shortly")

    def _archive_again(self, seqs: Sequence[int]) -> None:
        if seqs:
            entries = self._store.audit_page(seqs[0] - 1, seqs[-1] - seqs[0] + 1)
            self._files.archive_batch([e for e in entries if e.seq in set(seqs)])

    def page(self, after: int, limit: int) -> AuditPage:
        """The entries after sequence `after`, oldest first (what `verify` walks)."""
        entries = self._store.audit_page(after, limit)
        return AuditPage(
            entries=[AuditEntryView(**dict(e)) for e in entries],
            next_after=entries[-1].seq if len(entries) == limit else None,
        )

    def verify(self, check_archive: bool = False) -> AuditVerification:
        """Walk the chain from the first entry: every hash recomputed, every link checked,
        sequence numbers without gaps; with `check_archive`, each entry also equals its copy
        under Object Lock (the archive read whole: for an audit, not for every request).
        Reports the first broken link."""
        count, prev_hash, after = 0, GENESIS, 0
        archive: dict[int, list[AuditEntry]] = {}
        if check_archive:
            for raw in self._files.archived_copies():
                copy = AuditEntry.model_validate_json(raw)
                archive.setdefault(copy.seq, []).append(copy)
        while True:
            page = self._store.audit_page(after, VERIFY_PAGE)
            for entry in page:
                problem = None
                if entry.seq != after + 1:
                    problem = f"entry {after + 1} is missing"
                elif entry.prev_hash != prev_hash:
                    problem = "its link does not name the previous entry's hash"
                elif entry.digest() != entry.hash:
                    problem = "its content does not match its hash"
                elif check_archive and not _archived_equal(entry, archive.get(entry.seq, [])):
                    problem = "it differs from its locked archive copy (or the copy is missing)"
                if problem is not None:
                    return AuditVerification(
                        entries=count,
                        intact=False,
                        first_broken=after + 1,
                        problem=problem,
                        head_hash=prev_hash if count else None,
                    )
                count, prev_hash, after = count + 1, entry.hash, entry.seq
            if len(page) < VERIFY_PAGE:
                return AuditVerification(
                    entries=count, intact=True, head_hash=prev_hash if count else None
                )


def _archived_equal(entry: AuditEntry, copies: Sequence[AuditEntry]) -> bool:
    """The entry has a locked copy, and every copy of its sequence number is the entry."""
    return bool(copies) and all(c.hash == entry.hash and c.digest() == c.hash for c in copies)
