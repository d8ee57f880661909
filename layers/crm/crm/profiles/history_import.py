"""Historical imports: a shop moving onto the CRM loads its customers and their history at once.

`POST /imports` (crm.profiles.import_intake) validates the whole body, stages it as one object
(ImportsBucket, SSE-KMS), writes a status item and queues ONE message naming the import (no
PII). HistoryImportFunction then runs it here, in chunks of 100 customers:

1. identities: the owners of a chunk's identities are read together (BatchGetItem, 100 keys a
   call), then the profiles of the customers they match with the payments the chunk's refunds
   count against (the same); a customer is created, or matched when its identities all name
   one customer (its attributes fill only empty fields), through IdentityResolution's own
   code, from those profiles. Identities that name two customers fail that customer only:
   merging is a manager's decision.
2. history: the chunk's events are folded by the queue's folding core (EventFolding.
   fold_deliveries: from the profiles as resolution left them, no read of its own; one
   transaction per customer, the ledger making it exactly once, so a retried import folds
   nothing twice), without evaluating rule segments.
3. the lake: the rows of the whole import once, one object per (type, day) and one late marker
   for the nightly compaction (crm.lake.Lake.write_events).
4. no bus entry: history is not news (no "thanks for your order" for a 2024 order). Rule
   segments and scores come from the next segment run, which the caller starts
   (`POST /segments/runs`) when the status says `done` (docs/architecture.md "Historical
   imports" says why).
5. the status item follows each chunk, after the chunk's outcome per customer (by ref: what a
   retry counts from); the staged object and the outcomes are deleted when the import is done.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Literal

from aws_lambda_powertools import Logger

from crm.errors import CrmError
from crm.profiles.event_folding import BatchFolded, Delivery, EventFolding, Folded, refunded_by
from crm.profiles.identity import IdentityResolution
from crm.profiles.import_models import (
    MAX_REPORTED_FAILURES,
    CustomerOutcome,
    HistoryImport,
    ImportCounts,
    ImportCustomer,
    ImportFailure,
    ImportRecord,
    ImportState,
)
from crm.profiles.import_store import ImportStore, StagedImports
from crm.profiles.records import ProfileRecord
from crm.profiles.service import Loaded, ProfileService
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
        # stopped before writing them: rows carry event_id), but the status describes the
        # import, not the attempt: a customer whose chunk an earlier attempt completed keeps
        # the outcome recorded for it then (what that attempt created would count as matched
        # now, what it folded as duplicates). Outcomes are found by ref, not by chunk: erasure
        # may have taken customers out of the staged body meanwhile, which moves every later
        # customer into another chunk; an erased customer is counted nowhere. A chunk left
        # half done recorded nothing, so its customers are counted afresh.
        retry = redelivered or record.attempt > 0
        earlier, outcome_keys = self._store.outcomes(import_id) if record.attempt else ({}, [])
        record = record.model_copy(
            update={"status": ImportState.RUNNING, "attempt": record.attempt + 1,
                    "chunks_done": 0, "error": None, "started_at": self._profiles.clock(),
                    "finished_at": None, "counts": ImportCounts(), "failures": []}
        )  # fmt: skip
        self._store.put(record)
        try:
            body = HistoryImport.model_validate_json(staged)
            counted = {c.ref: earlier[c.ref] for c in body.customers if c.ref in earlier}
            for outcome in counted.values():
                self._count(record, outcome)
            folded: list[Folded] = []
            for chunk, start in enumerate(range(0, len(body.customers), CHUNK_CUSTOMERS)):
                customers = body.customers[start : start + CHUNK_CUSTOMERS]
                outcomes, chunk_folded = self._chunk(customers, retry)
                folded += chunk_folded
                fresh = [o for o in outcomes if o.ref not in counted]
                if fresh:
                    # Before the status: a retry counts from these, never from the status.
                    outcome_keys.append(
                        self._store.put_outcomes(import_id, record.attempt, chunk, fresh)
                    )
                for outcome in fresh:
                    self._count(record, outcome)
                record.chunks_done += 1
                self._store.put(record)
            record.lake_objects = len(self._folding.write_lake(folded, batch_id=import_id))
        except Exception as exc:
            self._finish(record, ImportState.FAILED, _reason(exc))
            raise
        self._finish(record, ImportState.DONE, None)
        # The import's PII lives no longer than the import; its bookkeeping neither.
        self._staged.delete(import_id)
        self._store.drop_outcomes(import_id, outcome_keys)
        logger.info("import done", extra={"import_id": import_id, **record.counts.model_dump()})
        return record

    def _finish(self, record: ImportRecord, state: ImportState, error: str | None) -> None:
        record.status, record.error = state, error
        record.finished_at = self._profiles.clock()
        self._store.put(record)

    @staticmethod
    def _count(record: ImportRecord, outcome: CustomerOutcome) -> None:
        counts = record.counts
        if outcome.customer == "created":
            counts.customers_created += 1
        elif outcome.customer == "matched":
            counts.customers_matched += 1
        else:
            counts.customers_failed += 1
        counts.events_folded += outcome.events_folded
        counts.events_duplicate += outcome.events_duplicate
        counts.events_failed += outcome.events_failed
        if outcome.reason is not None and len(record.failures) < MAX_REPORTED_FAILURES:
            record.failures.append(ImportFailure(ref=outcome.ref, reason=outcome.reason))

    def _chunk(
        self, customers: Sequence[ImportCustomer], retry: bool
    ) -> tuple[list[CustomerOutcome], list[Folded]]:
        """Resolve a chunk's customers and fold their events: what became of each customer,
        and what was folded (for the lake).

        Reads: the identities' owners, then the profiles of the customers matched (each
        identity naming one customer) with the payments the chunk's refunds count against,
        one BatchGetItem per 100 keys each. Resolution and folding both work from these
        profiles, so none is read twice; only a profile that changed meanwhile is read again
        (its commit's condition fails and the retry reads it alone)."""
        identities = self._identities
        wanted = {
            c.ref: identities.wanted_identities(c.identities, c.attributes) for c in customers
        }
        keys = {(i.channel.value, i.key) for found in wanted.values() for i in found}
        owners = self._profiles.store.owners(sorted(keys))
        named = {
            ref: {owners[k] for i in found if (k := (i.channel.value, i.key)) in owners}
            for ref, found in wanted.items()
        }
        # A customer naming several customers fails without a read (import_customer refuses
        # it); one naming none is new. Scores are not read: an import evaluates no rule
        # segment and a save never writes scores back.
        read = self._profiles.load_many(
            {owner for found in named.values() if len(found) == 1 for owner in found},
            refunded_by(e for c in customers if len(named[c.ref]) <= 1 for e in c.events),
            scores=False,
        )
        profiles = _ChunkProfiles(read)
        codec = self._profiles.codec()
        deliveries: list[Delivery] = []
        ref_of: dict[str, str] = {}
        new: dict[str, tuple[ProfileRecord, list[Write]]] = {}
        outcomes: dict[str, CustomerOutcome] = {}
        customer_of: dict[str, str] = {}  # ref -> customer id, of the customers resolved
        for customer in customers:
            ref = customer.ref
            try:
                # A new customer with history is created by the transaction of its history:
                # one TransactWriteItems for both (a customer without events is created now).
                found = identities.import_customer(
                    customer.attributes, wanted[ref], codec, owners,
                    defer_create=bool(customer.events), profiles=profiles.by_id,
                    consent=customer.consent,
                )  # fmt: skip
            except Exception as exc:  # one customer's trouble is its own
                outcomes[ref] = CustomerOutcome(ref=ref, customer="failed", reason=_reason(exc))
                continue
            customer_id = found.record.customer_id
            customer_of[ref] = customer_id
            if found.pending is not None:
                new[customer_id] = (found.record, found.pending)  # counted once it commits
            else:
                if not found.created:
                    profiles.resolved(found.record)  # the next to match it sees its changes
                state: Literal["created", "matched"] = "created" if found.created else "matched"
                outcomes[ref] = CustomerOutcome(ref=ref, customer=state)
            for event in customer.events:
                named_event = event.model_copy(update={"customer_id": customer_id})
                deliveries.append(Delivery(event.event_id, named_event, retry))
                ref_of[event.event_id] = ref
        out = BatchFolded()
        self._folding.fold_deliveries(deliveries, out, evaluate_rules=False, codec=codec,
                                      new=new, read=profiles.for_folding())  # fmt: skip
        # A new customer exists once a transaction of its history committed; if none did, its
        # creation was rolled back with them and the customer failed.
        written = {f.customer_id for f in out.folded}
        for ref, customer_id in customer_of.items():
            if customer_id in new:
                outcomes[ref] = CustomerOutcome(
                    ref=ref, customer="created" if customer_id in written else "failed"
                )
        delivered: Counter[str] = Counter(ref_of.values())
        applied = Counter(ref_of[f.event.event_id] for f in out.folded if f.rev is not None)
        failed: dict[str, list[Exception]] = {}
        for event_id, error in out.failed.items():
            failed.setdefault(ref_of[event_id], []).append(error)
        for ref, events in delivered.items():
            errors = failed.get(ref, [])
            reason = f"{len(errors)} event(s) not folded: {_reason(errors[0])}" if errors else None
            outcomes[ref] = outcomes[ref].model_copy(
                update={"events_folded": applied[ref], "events_failed": len(errors),
                        "events_duplicate": events - applied[ref] - len(errors), "reason": reason}
            )  # fmt: skip
        return [outcomes[c.ref] for c in customers], out.folded


class _ChunkProfiles:
    """A chunk's profiles, read together: what resolution starts from (by the owner ids its
    identities name, merges followed) and what folding starts from (by live id). A matched
    customer's resolution may change its profile (fill empty fields, claim identities): the
    changed one replaces the read one, so the next customer of the chunk matching the same
    profile, and the fold, start from the revision committed."""

    def __init__(self, read: Loaded) -> None:
        self._payments = read.payments
        self._asked: dict[str, list[str]] = {}  # live id -> the ids asked that lead to it
        self.by_id: dict[str, ProfileRecord | Exception] = dict(read.missing)
        self._live: dict[str, ProfileRecord] = {}
        for asked, record in read.live.items():
            self.by_id[asked] = record
            self._live[record.customer_id] = record
            self._asked.setdefault(record.customer_id, []).append(asked)

    def resolved(self, record: ProfileRecord) -> None:
        self._live[record.customer_id] = record
        for asked in self._asked.get(record.customer_id, [record.customer_id]):
            self.by_id[asked] = record

    def for_folding(self) -> Loaded:
        return Loaded(live=dict(self._live), payments=self._payments)
