"""The privacy family's API shapes: requests as filed, decided and reported, the export link
and the audit chain's verification."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field, StringConstraints

from crm.models import Output, StrictInput
from crm.personal_data import Holding, Remnant
from crm.profiles.models import ConsentPurpose, Key, ProfileAttributes

# Why a request was filed, decided or extended: a short code ("customer_app", "legal_hold",
# "complex_request"), never free text, which could carry PII into the audit trail.
ReasonCode = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z0-9_.\-]{1,64}$")
]


class RequestKind(StrEnum):
    ACCESS = "access"
    ERASURE = "erasure"
    RECTIFICATION = "rectification"
    CONSENT_WITHDRAWAL = "consent_withdrawal"
    RESTRICTION = "restriction"


class Regulation(StrEnum):
    PIPL = "pipl"
    GDPR = "gdpr"
    CCPA = "ccpa"


class RequestStatus(StrEnum):
    AWAITING_CONFIRMATION = "awaiting_confirmation"  # filed by an agent: the customer confirms
    AWAITING_APPROVAL = "awaiting_approval"  # a privacy officer approves (erasure by default)
    RUNNING = "running"  # store steps queued or running
    COMPLETED = "completed"
    REJECTED = "rejected"


OPEN_STATUSES = frozenset(
    {RequestStatus.AWAITING_CONFIRMATION, RequestStatus.AWAITING_APPROVAL, RequestStatus.RUNNING}
)


class StepState(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class FileRequest(StrictInput):
    # What fits each kind, in the document as the service checks it: changes only (and
    # always) for a rectification, purposes only for a consent withdrawal.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {
                    "required": ["kind", "changes"],
                    "properties": {
                        "kind": {"const": "rectification"},
                        "changes": {"type": "object", "minProperties": 1},
                        "purposes": {"maxItems": 0},
                    },
                },
                {
                    "required": ["kind"],
                    "properties": {
                        "kind": {"const": "consent_withdrawal"},
                        "changes": {"type": "null"},
                    },
                },
                {
                    "required": ["kind"],
                    "properties": {
                        "kind": {"enum": ["access", "erasure", "restriction"]},
                        "changes": {"type": "null"},
                        "purposes": {"maxItems": 0},
                    },
                },
            ]
        }
    )

    customer_id: Key
    kind: RequestKind
    regulation: Regulation | None = Field(
        default=None,
        description="defaults from the stack's data region (cn pipl, eu gdpr, us ccpa)",
    )
    purposes: list[ConsentPurpose] = Field(
        default=[],
        max_length=10,
        description="consent_withdrawal: the purposes withdrawn; none means every purpose",
    )
    changes: ProfileAttributes | None = Field(
        default=None, description="rectification: the corrected attributes"
    )
    reason: ReasonCode | None = None
    dry_run: bool = Field(
        default=False, description="list what each store holds (inventory), change nothing"
    )


class Decision(StrictInput):
    reason: ReasonCode | None = None


class Extension(StrictInput):
    reason: ReasonCode = Field(description="why the request needs longer (told to the customer)")


class StepView(Output):
    store: str
    state: StepState
    attempts: int = 0
    error: str | None = Field(default=None, description="the failure's class, never its text")
    counts: dict[str, int] = Field(default={})
    holdings: list[Holding] = Field(default=[])


class StoreProof(Output):
    """One store's verification after an erasure: where identifiers remain, never values."""

    store: str
    checked: int
    clean: bool
    remnants: list[Remnant] = Field(default=[])
    remnants_total: int = 0


class RequestView(Output):
    request_id: str
    customer_id: str
    kind: RequestKind
    regulation: Regulation
    status: RequestStatus
    dry_run: bool
    filed_at: datetime
    filed_by_staff: bool
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
    steps: list[StepView] = Field(default=[])
    proof: list[StoreProof] | None = None
    export_ready: bool = False


class RequestPage(Output):
    requests: list[RequestView]
    next_token: str | None = None


class ExportLink(Output):
    request_id: str
    url: str
    expires_at: datetime


class AuditEntryView(Output):
    """One link of the audit trail: who did what to which customer's data, and why (ids,
    action names and field names only: no personal data)."""

    seq: int
    at: datetime
    actor: str
    action: str
    customer_id: str | None = None
    request_id: str | None = None
    fields: list[str]
    why: str | None = None
    detail: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(Output):
    entries: list[AuditEntryView] = Field(description="in the chain's order, oldest first")
    next_after: int | None = Field(
        description="the `after` of the next page (the last entry's seq); null at the head"
    )


class AuditVerification(Output):
    entries: int
    intact: bool
    first_broken: int | None = Field(default=None, description="the sequence of the first bad link")
    problem: str | None = None
    head_hash: str | None = None
