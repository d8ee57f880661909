"""The shapes of a historical import (`POST /imports`, `GET /imports/{import_id}`) and of its
status record: a shop moving onto the CRM sends its customers with their whole history at once.

An imported customer is an upsert's identities and attributes with its events; its events are
the `POST /events` events less the customer reference (they belong to the customer they are
listed under), so every rule of an event (its types, money, items, times) is the same.
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import ConfigDict, Field, model_validator

from crm.config import DataRegion
from crm.models import Output, Record, StrictInput
from crm.profiles.change_models import ConsentChange
from crm.profiles.customer_events import AfterSalesEvent, BrowseEvent, OrderEvent
from crm.profiles.models import MAX_IDENTITIES, RESIDENCY, Identity, Key, ProfileAttributes

MAX_IMPORT_CUSTOMERS = 1_000
MAX_IMPORT_EVENTS = 20_000
MAX_IMPORT_CONSENT = 100  # decisions of one customer, a history of each purpose's
# API Gateway hands a Lambda function at most 6 MB (the synchronous invocation's payload limit).
MAX_IMPORT_BYTES = 6 * 1024 * 1024
MAX_REPORTED_FAILURES = MAX_IMPORT_CUSTOMERS  # one per customer: the status item stays small

_BELONGS = "an imported event belongs to the customer it is listed under"


def _no_customer_reference(customer_id: str | None, identity: Identity | None) -> None:
    if customer_id is not None or identity is not None:
        raise ValueError(f"give neither customer_id nor identity: {_BELONGS}")


# Each overrides the events' own check (exactly one of customer_id or identity) by its name.
class ImportedOrderEvent(OrderEvent):
    model_config = ConfigDict(json_schema_extra={"description": _BELONGS})
    # Set by the import once the customer is resolved, never by the client (null only).
    customer_id: None = None
    identity: None = None

    @model_validator(mode="after")
    def _one_customer_reference(self) -> Self:
        _no_customer_reference(self.customer_id, self.identity)
        return self


class ImportedBrowseEvent(BrowseEvent):
    model_config = ConfigDict(json_schema_extra={"description": _BELONGS})
    # Set by the import once the customer is resolved, never by the client (null only).
    customer_id: None = None
    identity: None = None

    @model_validator(mode="after")
    def _one_customer_reference(self) -> Self:
        _no_customer_reference(self.customer_id, self.identity)
        return self


class ImportedAfterSalesEvent(AfterSalesEvent):
    model_config = ConfigDict(json_schema_extra={"description": _BELONGS})
    # Set by the import once the customer is resolved, never by the client (null only).
    customer_id: None = None
    identity: None = None

    @model_validator(mode="after")
    def _one_customer_reference(self) -> Self:
        _no_customer_reference(self.customer_id, self.identity)
        return self


ImportedEvent = Annotated[
    ImportedOrderEvent | ImportedBrowseEvent | ImportedAfterSalesEvent,
    Field(discriminator="type"),
]


class ImportCustomer(StrictInput):
    ref: Key = Field(
        description="the shop's own key of the customer, unique in the import; failures name it"
    )
    # As an upsert's: room is left for the phone and email attributes, which are identities too.
    identities: list[Identity] = Field(min_length=1, max_length=MAX_IDENTITIES - 2)
    attributes: ProfileAttributes = Field(default_factory=ProfileAttributes)
    residency: DataRegion | None = Field(default=None, description=RESIDENCY)
    events: list[ImportedEvent] = Field(default=[], max_length=MAX_IMPORT_EVENTS)
    consent: list[ConsentChange] = Field(
        default=[],
        max_length=MAX_IMPORT_CONSENT,
        description="the customer's consent decisions, as PUT /customers/{id}/consent takes "
        "each (decided_at: when the customer decided; the import's time if left out): a "
        "history of several per purpose is kept in the consent ledger, and each purpose takes "
        "its latest (of decisions at the same time, the last listed); a matched profile keeps "
        "a later decision of its own",
    )


class HistoryImport(StrictInput):
    """Customers with their history, created or matched by identity and folded as if their
    events had been sent through `POST /events`, without announcing them (history is not
    news: no journey starts for a two-year-old order)."""

    customers: list[ImportCustomer] = Field(min_length=1, max_length=MAX_IMPORT_CUSTOMERS)


class ImportState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ImportFailure(Record):
    ref: str
    reason: str = Field(description="why the customer or its events were not imported; no PII")


class ImportCounts(Record):
    customers_created: int = 0
    customers_matched: int = 0
    customers_failed: int = 0
    events_folded: int = 0
    events_duplicate: int = Field(default=0, description="folded before: the ledger had them")
    events_failed: int = 0


class CustomerOutcome(Record):
    """What an import did with one customer (its ref, never its data), recorded once its
    chunk completed (crm.profiles.import_store.ImportStore.put_outcomes): a retry counts a
    customer an earlier attempt completed as that attempt did, found by its ref, whatever
    erasure took out of the body meanwhile."""

    ref: str
    customer: Literal["created", "matched", "failed"]
    events_folded: int = 0
    events_duplicate: int = 0
    events_failed: int = 0
    reason: str | None = None  # why it (or some of its events) failed, as failures report it


class ImportRecord(Record):
    """The import's status item (CustomersTable, `PK=IMPORT#<id>`): ids, counts and refs only."""

    import_id: str
    status: ImportState = ImportState.QUEUED
    requested_by: str
    requested_at: datetime
    customers: int
    events: int
    attempt: int = 0
    chunks_done: int = 0
    counts: ImportCounts = Field(default_factory=ImportCounts)
    failures: list[ImportFailure] = Field(default=[])
    lake_objects: int = 0
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class ImportAccepted(Output):
    import_id: str
    status: ImportState
    customers: int
    events: int


class ImportFailureView(Output):
    ref: str
    reason: str


class ImportStatusView(Output):
    import_id: str
    status: ImportState = Field(
        description="queued, running, done or failed; rule segments and scores follow at the "
        "next segment run (`POST /segments/runs`), which the caller starts"
    )
    requested_at: datetime
    customers: int
    events: int
    attempt: int = Field(description="how many times the import ran (a retry folds nothing twice)")
    chunks_done: int
    customers_created: int
    customers_matched: int
    customers_failed: int
    events_folded: int
    events_duplicate: int
    events_failed: int
    failures: list[ImportFailureView]
    lake_objects: int
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None
