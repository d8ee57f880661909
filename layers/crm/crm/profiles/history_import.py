"""Historical imports: a shop moving onto the CRM loads its customers and their history at once.

`POST /imports` (crm.profiles.import_intake) validates the whole body, stages it as one object
(ImportsBucket, SSE-KMS), writes a status item and queues ONE message naming the import (no
PII). HistoryImportFunction then runs it here, in chunks of 100 customers:

1. identities: the owners of a chunk's identities are read together (BatchGetItem, 100 keys a
   call); a customer is created, or matched when its identities all name one customer (its
   attributes fill only empty fields), through IdentityResolution's own code. Identities that
   name two customers fail that customer only: merging is a manager's decision.
2. history: the chunk's events are folded by the queue's folding core (EventFolding.
   fold_deliveries: one read per chunk, one transaction per customer, the ledger making it
   exactly once, so a retried import folds nothing twice), without evaluating rule segments.
3. the lake: the rows of the whole import once, one object per (type, day) and one late marker
   for the nightly compaction (crm.lake.Lake.write_events).
4. no bus entry: history is not news (no "thanks for your order" for a 2024 order). Rule
   segments and scores come from the next segment run, which the caller starts
   (`POST /segments/runs`) when the status says `done` (docs/architecture.md "Historical
   imports" says why).
5. the status item follows each chunk; the staged object is deleted when the import is done.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from aws_lambda_powertools import Logger

from crm.errors import CrmError
from crm.profiles.event_folding import BatchFolded, Delivery, EventFolding, Folded
from crm.profiles.identity import IdentityResolution
from crm.profiles.import_models import (
    MAX_REPORTED_FAILURES,
    HistoryImport,
    ImportCounts,
    ImportCustomer,
    ImportFailure,
    ImportRecord,
    ImportState,
)
from crm.profiles.import_store import ImportStore, StagedImports
from crm.profiles.records import ProfileRecord
from crm.profiles.service import ProfileService
from crm.profiles.store import Write
from crm.sqs_consumer import PoisonMessage

logger = Logger(child=True)

CHUNK_CUSTOMERS = 100  # a chunk's identities and profiles are one BatchGetItem of 100 keys


def _reason(exc: Exception) -> str:
    """Why, without customer data: the CRM's own messages name ids and fields only; any other
    error by its type."""
    return exc.message if isinstance(exc, CrmError) else type(exc).__name__


class HistoryImports:
    def __init__(
        self,
        profiles: ProfileService,
        identities: IdentityResolution,
        folding: EventFolding,
        store: ImportStore,
        staged: StagedImports,
    ) -> None:
        self._profiles = profiles
        self._identities = identities
        self._folding = folding
        self._store = store
        self._staged = staged

    # ------------------------------------------------------------ the function
    def run_message(self, body: str, redelivered: bool) -> ImportRecord:
        try:
            import_id = str(json.loads(body)["import_id"])
        except (ValueError, TypeError, KeyError):
            raise PoisonMessage("the message names no import_id") from None
        return self.run(import_id, redelivered)

    def run(self, import_id: str, redelivered: bool = False) -> ImportRecord:
        """Run an import (again: a retry folds nothing twice); its final status."""
        record = self._store.get(import_id)
        if record is None:
            raise PoisonMessage("no import of this import_id")
        if record.status is ImportState.DONE:
            return record  # delivered again after it finished: nothing is left to do
        staged = self._staged.get(import_id)
        if staged is None:
            gone = "the staged import is gone (expired, or every customer in it was erased)"
            self._finish(record, ImportState.FAILED, gone)
            raise PoisonMessage("the import's staged object is gone")
        # A run after an earlier attempt goes through every chunk again (the ledger folds
        # nothing twice, and the lake rows are written again since that attempt may have
        # stopped before writing them: rows carry event_id), but the chunks that attempt
        # completed keep the counts and failures it recorded for them: the status describes
        # the import, not the attempt (what it created would count as matched now, what it
        # folded as duplicates). Only a chunk it left half done is counted afresh.
        retry = redelivered or record.attempt > 0
        counted_before = record.chunks_done if retry else 0
        record = record.model_copy(
            update={"status": ImportState.RUNNING, "attempt": record.attempt + 1,
                    "chunks_done": 0, "error": None, "started_at": self._profiles.clock(),
                    "finished_at": None,
                    **({} if counted_before else {"counts": ImportCounts(), "failures": []})}
        )  # fmt: skip
        self._store.put(record)
        try:
            body = HistoryImport.model_validate_json(staged)
            folded: list[Folded] = []
            for start in range(0, len(body.customers), CHUNK_CUSTOMERS):
                already_counted = record.chunks_done < counted_before
                tally = record.model_copy(deep=True) if already_counted else record
                folded += self._chunk(body.customers[start : start + CHUNK_CUSTOMERS], tally,
                                      retry)  # fmt: skip
                record.chunks_done += 1
                self._store.put(record)
            record.lake_objects = len(self._folding.write_lake(folded, batch_id=import_id))
        except Exception as exc:
            self._finish(record, ImportState.FAILED, _reason(exc))
            raise
        self._finish(record, ImportState.DONE, None)
        # The import's PII lives no longer than the import.
        self._staged.delete(import_id)
        logger.info("import done", extra={"import_id": import_id, **record.counts.model_dump()})
        return record

    def _finish(self, record: ImportRecord, state: ImportState, error: str | None) -> None:
        record.status, record.error = state, error
        record.finished_at = self._profiles.clock()
        self._store.put(record)

    def _chunk(
        self, customers: Sequence[ImportCustomer], record: ImportRecord, retry: bool
    ) -> list[Folded]:
        """Resolve a chunk's customers and fold their events; what was folded (for the lake)."""
        counts = record.counts
        identities = self._identities
        wanted = {
            c.ref: identities.wanted_identities(c.identities, c.attributes) for c in customers
        }
        keys = {(i.channel.value, i.key) for found in wanted.values() for i in found}
        owners = self._profiles.store.owners(sorted(keys))
        codec = self._profiles.codec()
        deliveries: list[Delivery] = []
        ref_of: dict[str, str] = {}
        new: dict[str, tuple[ProfileRecord, list[Write]]] = {}
        for customer in customers:
            try:
                # A new customer with history is created by the transaction of its history:
                # one TransactWriteItems for both (a customer without events is created now).
                found = identities.import_customer(
                    customer.attributes, wanted[customer.ref], codec, owners,
                    defer_create=bool(customer.events),
                )  # fmt: skip
            except Exception as exc:  # one customer's trouble is its own
                counts.customers_failed += 1
                self._failure(record, customer.ref, _reason(exc))
                continue
            customer_id = found.record.customer_id
            if found.pending is not None:
                new[customer_id] = (found.record, found.pending)  # counted once it commits
            elif found.created:
                counts.customers_created += 1
            else:
                counts.customers_matched += 1
            for event in customer.events:
                named = event.model_copy(update={"customer_id": customer_id})
                deliveries.append(Delivery(event.event_id, named, retry))
                ref_of[event.event_id] = customer.ref
        out = BatchFolded()
        self._folding.fold_deliveries(deliveries, out, evaluate_rules=False, codec=codec, new=new)
        # A new customer exists once a transaction of its history committed; if none did, its
        # creation was rolled back with them and the customer failed.
        written = {f.customer_id for f in out.folded}
        for customer_id in new:
            if customer_id in written:
                counts.customers_created += 1
            else:
                counts.customers_failed += 1
        applied = sum(1 for f in out.folded if f.rev is not None)
        counts.events_folded += applied
        counts.events_failed += len(out.failed)
        counts.events_duplicate += len(deliveries) - applied - len(out.failed)
        failed_refs: dict[str, list[Exception]] = {}
        for event_id, error in out.failed.items():
            failed_refs.setdefault(ref_of[event_id], []).append(error)
        for ref, errors in failed_refs.items():
            self._failure(record, ref, f"{len(errors)} event(s) not folded: {_reason(errors[0])}")
        return out.folded

    @staticmethod
    def _failure(record: ImportRecord, ref: str, reason: str) -> None:
        if len(record.failures) < MAX_REPORTED_FAILURES:
            record.failures.append(ImportFailure(ref=ref, reason=reason))
