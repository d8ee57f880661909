"""Stored shapes of the privacy family and their keys (PrivacyTable, docs/data-model.md).

- `REQ#<id> / REQ`: a request, with the DataSubject and the policy frozen when it was filed,
  one step per store and, after an erasure, the verification proof. Index `status`
  (`SPK=STATUS#<status>`, `SSK=<filed_at>#<id>`) lists requests for officers; index
  `customer` (`CPK=CUST#<customer_id>`, `CSK=<kind>#<filed_at>`) finds an open duplicate.
- `AUDIT / SEQ#<000000000001>`: the hash-chained audit trail, one partition in sequence order
  (a conditional put on the next sequence number keeps two writers from forking it).
- `AUDITREAD#<read id> / READ`: an unmasked PII read already in the chain (its `seq`), put in
  the transaction that appends it, so a redelivered read is appended once; expires after SQS
  could deliver it again.
"""

import hashlib
import json
from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from crm.clock import iso
from crm.models import Record
from crm.personal_data import DataSubject, Holding
from crm.privacy.models import (
    Regulation,
    RequestKind,
    RequestStatus,
    StepState,
    StoreProof,
)

AUDIT_PARTITION = "AUDIT"
GENESIS = "0" * 64  # the previous hash of the first entry


class StepRecord(Record):
    state: StepState = StepState.PENDING
    attempts: int = 0
    error: str | None = None
    counts: dict[str, int] = Field(default={})
    holdings: list[Holding] = Field(default=[])


class PrivacyRequestRecord(Record):
    request_id: str
    customer_id: str
    kind: RequestKind
    regulation: Regulation
    status: RequestStatus
    dry_run: bool = False
    filed_at: datetime
    filed_by: str
    filed_by_staff: bool
    reason: str | None = None
    due_at: datetime
    acknowledge_by: datetime | None = None
    extended: bool = False
    deadline_missed: bool = False
    needs_approval: bool
    needs_confirmation: bool
    approved_by: str | None = None
    confirmed_at: datetime | None = None
    completed_at: datetime | None = None
    duplicate_of: str | None = None
    subject: DataSubject
    purposes: list[str] = Field(default=[])
    changes: dict[str, Any] | None = None  # rectification: sealed before storing (see service)
    steps: dict[str, StepRecord] = Field(default={})
    proof: list[StoreProof] | None = None
    export_key: str | None = None


def request_key(request_id: str) -> dict[str, str]:
    return {"PK": f"REQ#{request_id}", "SK": "REQ"}


def status_partition(status: RequestStatus) -> str:
    return f"STATUS#{status.value}"


def status_sort(record: PrivacyRequestRecord) -> str:
    return f"{iso(record.filed_at)}#{record.request_id}"


def customer_partition(customer_id: str) -> str:
    return f"CUST#{customer_id}"


def customer_sort(kind: RequestKind, filed_at: datetime) -> str:
    return f"{kind.value}#{iso(filed_at)}"


class AuditEntry(Record):
    """One link of the chain: who did what to which customer's data, and why. Ids, action
    names and field names only: no plaintext PII."""

    seq: int
    at: datetime
    actor: str
    action: str
    customer_id: str | None = None
    request_id: str | None = None
    fields: list[str] = Field(default=[])
    why: str | None = None
    detail: dict[str, Any] = Field(default={})  # counts, store names, proof summary
    prev_hash: str
    hash: str = ""

    def digest(self) -> str:
        """sha256 over the entry's content and the previous entry's hash."""
        body = self.model_dump(mode="json", exclude={"hash"})
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()


def audit_sort(seq: int) -> str:
    return f"SEQ#{seq:012d}"


class WorkMessage(Record):
    """A privacy worker's message (PrivacyQueue): one store's step of a request, or the
    request's finish (verification, the bundle). Ids only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: str = Field(pattern=r"^[A-Za-z0-9_.\-]{1,128}$")
    store: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    finish: bool = False


def audit_read_key(read_id: str) -> dict[str, str]:
    return {"PK": f"AUDITREAD#{read_id}", "SK": "READ"}
