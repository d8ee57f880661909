"""The privacy audit trail: append-only, hash-chained entries in PrivacyTable, each also
archived to AuditArchiveBucket, whose Object Lock keeps it unchanged for years.

Each entry carries the previous entry's hash, and its own hash covers its content and that
link: changing, removing or reordering any entry breaks every link after it, which `verify`
finds (and names the first broken one). Two writers never fork the chain: an entry is put
only if its sequence number is still free (a conditional put); the loser re-reads the head
and links to it. One partition holds the chain: privacy actions are rare (hundreds a day),
far below a partition's 1,000 writes a second.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_lambda_powertools import Logger

from crm.clock import Clock
from crm.errors import Unavailable
from crm.privacy.models import AuditVerification
from crm.privacy.records import GENESIS, AuditEntry
from crm.privacy.store import PrivacyFiles, PrivacyStore

logger = Logger(child=True)

APPEND_ATTEMPTS = 10
VERIFY_PAGE = 500


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

    def verify(self, check_archive: bool = False) -> AuditVerification:
        """Walk the chain from the first entry: every hash recomputed, every link checked,
        sequence numbers without gaps; with `check_archive`, each entry also equals its copy
        under Object Lock (one S3 read an entry: for an audit, not for every request).
        Reports the first broken link."""
        count, prev_hash, after = 0, GENESIS, 0
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
                elif check_archive and not self._archived_equal(entry):
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

    def _archived_equal(self, entry: AuditEntry) -> bool:
        raw = self._files.archived(entry.seq)
        if raw is None:
            return False
        copy = AuditEntry.model_validate_json(raw)
        return copy.hash == entry.hash and copy.digest() == copy.hash
