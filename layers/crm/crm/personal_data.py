"""The registry's contract (platform): every store that holds customer data says how it finds,
exports, erases and proves erased one customer's data. Each family implements it for its own
stores (`crm/<family>/personal_data.py`) without knowing the privacy family; the privacy family
composes them into the one registry, and a test fails when a table or bucket of template.yaml
is claimed by no store.

A store's methods are idempotent: `erase` run twice changes nothing the second time, and
`verify` only reads. None of them logs or returns plaintext PII: exports carry the customer's
own data (they go only to the customer, in the exports bucket), every other result names keys,
counts and kinds.
"""

from enum import StrEnum
from typing import Any, Protocol

from pydantic import Field

from crm.models import Output


class ErasureMethod(StrEnum):
    DELETE = "delete"  # the items are deleted
    CRYPTO_SHRED = "crypto_shred"  # the data key is destroyed: every sealed copy is unreadable
    ANONYMISE_RETAIN = "anonymise_retain"  # kept by law (orders: amounts, dates, items), unlinked


class DataSubject(Output):
    """Everything that identifies one customer in any store, frozen when a request is created
    (so erasure and its proof still know the identifiers after the profile is gone). Only
    ids and keyed hashes: no plaintext phone or email."""

    customer_id: str
    pseudonym: str  # the lake's id for the customer (BlindIndex.pseudonym)
    blind_indexes: tuple[str, ...] = ()  # blind-index tokens of phones and emails
    external_ids: tuple[str, ...] = ()  # channel ids (openid, unionid, douyin id, member no.)
    merged_ids: tuple[str, ...] = ()  # customer ids merged into this one

    def identifiers(self) -> tuple[str, ...]:
        """What a verification pass searches for."""
        return (
            self.customer_id,
            self.pseudonym,
            *self.blind_indexes,
            *self.external_ids,
            *self.merged_ids,
        )


class Holding(Output):
    """One kind of item a store holds for a customer (a dry run lists these)."""

    kind: str  # "profile", "identity", "ledger", "points", "ticket", "message", "lake_row", ...
    count: int
    erasure: ErasureMethod
    retained_because: str | None = None  # the law a retained item is kept for


class StoreInventory(Output):
    store: str
    holdings: tuple[Holding, ...] = ()


class StoreExport(Output):
    """Sections of the access bundle: each a list of flat JSON-able records (CSV-able)."""

    store: str
    sections: dict[str, list[dict[str, Any]]] = Field(default={})
    explanations: dict[str, str] = Field(default={})  # automated decisions, in words


class StoreErasure(Output):
    store: str
    erased: dict[str, int] = Field(default={})  # kind -> items deleted or shredded
    anonymised: dict[str, int] = Field(default={})  # kind -> items kept unlinked


class Remnant(Output):
    """An identifier found after erasure: where, never the value itself."""

    kind: str
    location: str  # table + key, or bucket + object key
    identifier_kind: str  # "customer_id", "pseudonym", "blind_index", "external_id"


class StoreVerification(Output):
    store: str
    checked: int  # items or objects read
    remnants: tuple[Remnant, ...] = ()

    @property
    def clean(self) -> bool:
        return not self.remnants


class PersonalDataStore(Protocol):
    """One store of customer data, as the privacy registry sees it."""

    @property
    def name(self) -> str: ...

    @property
    def claims(self) -> tuple[str, ...]:
        """The template's logical ids of the tables and buckets this store covers."""
        ...

    def inventory(self, subject: DataSubject) -> StoreInventory: ...

    def export(self, subject: DataSubject) -> StoreExport: ...

    def erase(self, subject: DataSubject) -> StoreErasure: ...

    def verify(self, subject: DataSubject) -> StoreVerification: ...


class NoPersonalData:
    """A resource of the template that holds no customer data, claimed with the reason, so the
    registry still answers for every table and bucket (and a reviewer reads why here)."""

    def __init__(self, name: str, claims: tuple[str, ...], why: str) -> None:
        self._name, self._claims, self.why = name, claims, why

    @property
    def name(self) -> str:
        return self._name

    @property
    def claims(self) -> tuple[str, ...]:
        return self._claims

    def inventory(self, subject: DataSubject) -> StoreInventory:
        return StoreInventory(store=self._name)

    def export(self, subject: DataSubject) -> StoreExport:
        return StoreExport(store=self._name)

    def erase(self, subject: DataSubject) -> StoreErasure:
        return StoreErasure(store=self._name)

    def verify(self, subject: DataSubject) -> StoreVerification:
        return StoreVerification(store=self._name, checked=0)
