"""Events on their way from POST /events to the folder, with no plaintext PII in the queue.

The profile-events queue and its dead-letter queue are encrypted at rest with the PII key
(SSE-KMS), but whoever may read them (an operator inspecting the DLQ before a redrive, a tool
that peeks at messages) would still read what a message holds. So intake queues an internal
shape, `QueuedEvent`, in which:

- free text the folder needs (an after-sales `note`) is sealed with AES-256-GCM under a data
  key of the intake batch: one KMS GenerateDataKey per POST /events that carries free text,
  bound to the batch and its purpose by encryption context. Each field's associated data is the
  batch, the field and the event id, so a sealed note cannot be moved to another event or field.
  The wrapped key travels in the message; the folder unwraps it once per container (cached by
  wrapped key) and re-seals the note under the customer's own key, as before.
- free text nobody downstream reads (a search `query`: counted, never stored) is not queued.
- a phone or email identity is replaced by its blind-index form (token and masked display):
  the folder resolves the customer by the token, as every lookup by identity does.

The event contract clients send (crm.profiles.customer_events) is unchanged. The queued shape
is versioned: version 1, the event as the client sent it (no `v`), is what the code before
this one queued, and is still folded, so that messages queued before a deploy, or redriven
from the DLQ after it, are not lost. It can go once neither queue can hold one any more.
"""

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, Literal, NamedTuple, Self

from pydantic import ConfigDict, Field, ValidationError, model_validator

from crm.clock import IdFactory
from crm.errors import validation_problems
from crm.keys import TransitKeys, UnreadableKey
from crm.models import Record
from crm.pii import FieldCipher
from crm.profiles.customer_events import CUSTOMER_EVENT, CustomerEvent
from crm.profiles.record_models import Identity
from crm.profiles.records import StoredIdentity
from crm.sqs_consumer import PoisonMessage

QUEUED_VERSION: Literal[2] = 2
SEALED_FIELDS = ("note",)  # free text the folder needs: sealed for the journey
UNQUEUED_FIELDS = ("query",)  # free text nobody downstream reads: left behind at intake
# Stands for the customer of an event that names an identity, until the folder resolves it.
PENDING_CUSTOMER = "identity:pending"
# Unwrapped batch keys a container keeps: the messages of one request (up to 100) arrive in up
# to ten batches, interleaved with other requests' batches in the same container.
CACHED_KEYS = 64


class TransitKey(Record):
    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_id: str
    wrapped: str = Field(description="the batch's data key wrapped by the PII key, base64")


class QueuedEvent(Record):
    """What POST /events queues for the folder, one message per event (internal, versioned)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[2] = QUEUED_VERSION
    event: dict[str, Any] = Field(description="the event's fields but identity and free text")
    identity: StoredIdentity | None = Field(
        default=None, description="instead of event.customer_id: the identity's index form"
    )
    sealed: dict[str, str] = Field(
        default={}, description="free-text field -> sealed under the batch's key"
    )
    key: TransitKey | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.identity is None) == ("customer_id" not in self.event):
            raise ValueError("give exactly one of event.customer_id or identity")
        if not set(self.sealed) <= set(SEALED_FIELDS):
            raise ValueError("only free-text fields are sealed")
        if self.sealed and self.key is None:
            raise ValueError("sealed fields need the batch's key")
        return self


class Arrival(NamedTuple):
    """A queued event as the folder takes it: free text opened, and, for an event that names
    an identity instead of a customer, the identity to resolve (its customer_id is pending)."""

    event: CustomerEvent
    identity: StoredIdentity | None = None


def _field(field: str, event_id: str) -> str:
    return f"{field}:{event_id}"


def _poison_from(exc: ValidationError, what: str) -> PoisonMessage:
    """Names the fields, never their values (they may hold PII)."""
    problems = "; ".join(f"{p.field}: {p.message}" for p in validation_problems(exc))
    return PoisonMessage(f"not a valid {what} ({problems})")


class EventTransit:
    """Packs accepted events into queue messages (intake) and opens them again (folder).

    Built once per process: the folder's cache of unwrapped batch keys lives as long as the
    container, so one request's events cost one KMS Decrypt however many batches they span."""

    def __init__(
        self,
        keys: TransitKeys,
        stored_identity: Callable[[Identity], StoredIdentity],
        ids: IdFactory,
    ) -> None:
        self._keys = keys
        self._stored_identity = stored_identity
        self._ids = ids
        self._cipher = lru_cache(maxsize=CACHED_KEYS)(self._unwrapped)

    # ------------------------------------------------------------ intake
    def pack(self, events: Sequence[CustomerEvent]) -> list[str]:
        """One message body per event; costs one GenerateDataKey when any event carries free
        text, none otherwise."""
        batch_id = self._ids()
        key: TransitKey | None = None
        cipher: FieldCipher | None = None
        bodies = []
        for event in events:
            sealed: dict[str, str] = {}
            for field in SEALED_FIELDS:
                text = getattr(event, field, None)
                if not text:
                    continue
                if cipher is None:
                    plaintext, wrapped = self._keys.create(batch_id)
                    cipher = FieldCipher(batch_id, plaintext)
                    key = TransitKey(batch_id=batch_id, wrapped=base64.b64encode(wrapped).decode())
                sealed[field] = cipher.seal(_field(field, event.event_id), text)
            fields = event.model_dump(
                mode="json",
                exclude={"identity", *SEALED_FIELDS, *UNQUEUED_FIELDS},
                exclude_none=True,
            )
            queued = QueuedEvent(
                event=fields,
                identity=None if event.identity is None else self._stored_identity(event.identity),
                sealed=sealed,
                key=key if sealed else None,
            )
            bodies.append(queued.model_dump_json(exclude_none=True))
        return bodies

    # ------------------------------------------------------------ folder
    def unpack(self, body: str) -> Arrival:
        """Raises PoisonMessage, naming fields and never values, for what can never fold."""
        try:
            raw = json.loads(body)
        except ValueError:
            raw = None
        if not (isinstance(raw, dict) and "v" in raw):
            return Arrival(self._event_v1(body))
        try:
            queued = QueuedEvent.model_validate(raw)
        except ValidationError as exc:
            raise _poison_from(exc, "queued event") from None
        data = {**queued.event, **self._open(queued)}
        if queued.identity is not None:
            data["customer_id"] = PENDING_CUSTOMER
        try:
            event = CUSTOMER_EVENT.validate_python(data)
        except ValidationError as exc:
            raise _poison_from(exc, "customer event") from None
        return Arrival(event, queued.identity)

    @staticmethod
    def _event_v1(body: str) -> CustomerEvent:
        """A message queued before events travelled sealed: the event as the client sent it."""
        try:
            return CUSTOMER_EVENT.validate_json(body)
        except ValidationError as exc:
            raise _poison_from(exc, "customer event") from None

    def _open(self, queued: QueuedEvent) -> dict[str, str]:
        if not queued.sealed:
            return {}
        assert queued.key is not None  # the model guarantees it
        # cryptography loads with the first sealed event, not at every function's cold start.
        from cryptography.exceptions import InvalidTag

        try:
            wrapped = base64.b64decode(queued.key.wrapped, validate=True)
        except binascii.Error:
            raise PoisonMessage("the batch key is not base64") from None
        try:
            cipher = self._cipher(queued.key.batch_id, wrapped)
        except UnreadableKey as exc:
            raise PoisonMessage(f"the batch key cannot be unwrapped ({exc})") from None
        event_id = str(queued.event.get("event_id"))
        opened = {}
        for field, sealed in queued.sealed.items():
            try:
                opened[field] = cipher.open(_field(field, event_id), sealed)
            except (InvalidTag, ValueError):
                raise PoisonMessage(f"the sealed {field} cannot be opened") from None
        return opened

    def _unwrapped(self, batch_id: str, wrapped: bytes) -> FieldCipher:
        return FieldCipher(batch_id, self._keys.unwrap(batch_id, wrapped))
