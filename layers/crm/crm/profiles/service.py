"""The profile as every use case reads and changes it.

A change reads the profile, computes the new one, and commits it under a condition on the
revision it read; a concurrent change makes the commit fail and the use case run again on
fresh data (`retry`). Every commit goes through `save`, which also re-evaluates the customer's
rule segments, so a tag, a points change, a consent or an edit moves memberships within
seconds, as an event does.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol, TypeVar

from crm.clock import Clock, IdFactory
from crm.config import DataRegion
from crm.errors import Conflict, FieldProblem, NotFound, WrongDataRegion
from crm.keys import DataKeys
from crm.pii import BlindIndex, FieldCipher, mask_email, mask_phone
from crm.profiles.pii_codec import PiiCodec
from crm.profiles.record_models import PII_CHANNELS, Channel, Identity
from crm.profiles.records import OrderPayment, ProfileRecord, StoredIdentity
from crm.profiles.store import ProfileStore, SaveProfile, StaleProfile, Write

T = TypeVar("T")

MAX_ATTEMPTS = 8
BACKOFF_BASE_S = 0.02
BACKOFF_CAP_S = 0.5
MAX_MERGE_HOPS = 5


class SegmentShift(NamedTuple):
    """The segments one customer was in before a change and is in after it."""

    customer_id: str
    before: tuple[str, ...]
    after: tuple[str, ...]


@dataclass
class Loaded:
    """Profiles read together: the live profile behind each id asked for (merges followed),
    why an id has none, and the folded payments of the orders asked for."""

    live: dict[str, ProfileRecord] = field(default_factory=dict)
    missing: dict[str, Exception] = field(default_factory=dict)
    payments: dict[str, OrderPayment] = field(default_factory=dict)


class RuleSegments(Protocol):
    """Who keeps rule segments (the segments family): re-evaluates a changed profile and
    announces who entered or left. The composition root hands it in, so profiles, the lower
    family, never imports segments."""

    def evaluate(self, record: ProfileRecord, now: datetime) -> list[str]: ...

    def announce(self, shifts: Sequence[SegmentShift]) -> None: ...


class NoRuleSegments:
    """For a profiles family built alone (tools, service tests): memberships stay as they are."""

    def evaluate(self, record: ProfileRecord, now: datetime) -> list[str]:
        return list(record.segments)

    def announce(self, shifts: Sequence[SegmentShift]) -> None:
        return None


class ProfileService:
    def __init__(
        self,
        store: ProfileStore,
        keys: DataKeys,
        index: Callable[[], BlindIndex],
        rules: RuleSegments,
        clock: Clock,
        ids: IdFactory,
        sleep: Callable[[float], Any] = time.sleep,
        region: DataRegion = DataRegion.CN,
    ) -> None:
        self.region = region
        self.store = store
        self.keys = keys
        self.index = index
        self.rules = rules
        self.clock = clock
        self.ids = ids
        self._sleep = sleep

    def check_residency(self, wanted: Iterable[tuple[str, DataRegion | None]]) -> None:
        """Refuse (421, naming where each belongs) customers of another data region: their
        data is kept by that region's stack, never here."""
        misplaced = [(w, r) for w, r in wanted if r is not None and r != self.region]
        if misplaced:
            regions = sorted({str(region) for _, region in misplaced})
            elsewhere = [
                FieldProblem(where, f"belongs to the {region} data region, not {self.region}")
                for where, region in misplaced
            ]
            raise WrongDataRegion(
                f"this stack keeps the {self.region} data region's customers; send these to "
                f"the {' and '.join(regions)} region's API; nothing was stored",
                elsewhere,
            )

    # ------------------------------------------------------------ reading
    def load(self, customer_id: str) -> ProfileRecord:
        """The live profile for an id, following merges to the profile that absorbed it."""
        record = self.store.get(customer_id)
        for _ in range(MAX_MERGE_HOPS):
            if record is None:
                raise NotFound(f"no customer {customer_id}")
            if record.merged_into is None:
                return record
            record = self.store.get(record.merged_into)
        raise Conflict(f"customer {customer_id} is in a merge chain too long to follow")

    def load_many(
        self, customer_ids: Collection[str], order_ids: Collection[str] = (), scores: bool = True
    ) -> Loaded:
        """`load` for many ids at once, with the payments of some orders: one BatchGetItem
        (per 100 keys), and one more per merge hop that some id needs. `scores=False` reads
        the profiles without their scores (ProfileStore.profiles_and_payments)."""
        loaded = Loaded()
        found, loaded.payments = self.store.profiles_and_payments(customer_ids, order_ids, scores)
        following = {customer_id: customer_id for customer_id in customer_ids}
        for _ in range(MAX_MERGE_HOPS):
            hops: dict[str, str] = {}
            for asked, current in following.items():
                record = found.get(current)
                if record is None:
                    loaded.missing[asked] = NotFound(f"no customer {asked}")
                elif record.merged_into is None:
                    loaded.live[asked] = record
                else:
                    hops[asked] = record.merged_into
            if not hops:
                return loaded
            unread = set(hops.values()) - set(found)
            if unread:
                found |= self.store.profiles_and_payments(unread, scores=scores)[0]
            following = hops
        for asked in following:
            loaded.missing[asked] = Conflict(
                f"customer {asked} is in a merge chain too long to follow"
            )
        return loaded

    def codec(self) -> PiiCodec:
        """A codec for one request or one batch: each data key it unwraps costs one KMS call,
        once."""
        return PiiCodec(self.keys)

    def sealing_cipher(self, customer_id: str) -> tuple[str, FieldCipher]:
        """The live customer behind an id and a cipher under their data key, created and stored
        when the profile has none yet: for another family's free text about the customer
        (ticket messages), sealed like PII so that erasing the key erases it too."""

        def attempt() -> tuple[str, FieldCipher]:
            record = self.load(customer_id)
            had_key = record.wrapped_key is not None
            cipher = self.codec().cipher(record)
            if not had_key:
                self.save(record, evaluate_rules=False, announce=False)
            return record.customer_id, cipher

        return self.retry(attempt)

    def sealing_cipher_with_payments(
        self, customer_id: str, order_ids: Collection[str]
    ) -> tuple[FieldCipher, Loaded]:
        """`sealing_cipher` and `load_many` in one read (a BatchGetItem): the live profile
        behind an id with the payments of some orders, and a cipher under its data key, created
        and stored when it has none yet. For a request that seals text about the customer and
        checks an order against them (opening an after-sales case)."""

        def attempt() -> tuple[FieldCipher, Loaded]:
            loaded = self.load_many([customer_id], order_ids)
            record = loaded.live.get(customer_id)
            if record is None:
                raise loaded.missing[customer_id]
            had_key = record.wrapped_key is not None
            cipher = self.codec().cipher(record)
            if not had_key:
                self.save(record, evaluate_rules=False, announce=False)
            return cipher, loaded

        return self.retry(attempt)

    def opening_cipher(self, customer_id: str) -> FieldCipher | None:
        """A cipher under this very profile's data key (merged or not: text sealed under it
        stays sealed under it), or None when the profile or its key is gone (erased)."""
        record = self.store.get(customer_id)
        if record is None or record.wrapped_key is None:
            return None
        return self.codec().cipher(record)

    def stored_identity(self, identity: Identity) -> StoredIdentity:
        if identity.channel in PII_CHANNELS:
            mask = mask_phone if identity.channel is Channel.PHONE else mask_email
            return StoredIdentity(
                channel=identity.channel,
                key=self.index().token(identity.channel, identity.external_id),
                display=mask(identity.external_id),
            )
        return StoredIdentity(
            channel=identity.channel, key=identity.external_id, display=identity.external_id
        )

    # ------------------------------------------------------------ changing
    def save(
        self,
        record: ProfileRecord,
        *extra: Write,
        evaluate_rules: bool = True,
        announce: bool = True,
        create: bool = False,
    ) -> SegmentShift | None:
        """Commit a changed profile (and its companions) against the revision it was read at,
        or, with `create`, a profile that must not exist yet (a new customer whose creation
        and first changes commit together: a historical import's).

        Returns the customer's segment shift when memberships moved; it is announced at once
        unless the caller gathers shifts to announce once per batch."""
        before = tuple(record.segments)
        if evaluate_rules:
            record.segments = sorted(self.rules.evaluate(record, self.clock()))
        expected = record.rev
        record.rev += 1
        record.updated_at = self.clock()
        self.store.commit([SaveProfile(record, None if create else expected), *extra])
        if tuple(record.segments) == before:
            return None
        shift = SegmentShift(record.customer_id, before, tuple(record.segments))
        if announce:
            self.rules.announce([shift])
        return shift

    def retry(self, attempt: Callable[[], T]) -> T:
        """Run a read-modify-write until it commits against the revision it read.

        Concurrent writers of one profile back off with full jitter, so a burst (twenty
        redemptions at once) spreads out instead of colliding again; one that still loses
        gets a 409 it can retry, never a 500."""
        for n in range(MAX_ATTEMPTS):
            try:
                return attempt()
            except StaleProfile:
                if n + 1 < MAX_ATTEMPTS:
                    ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**n)
                    self._sleep(random.uniform(0, ceiling))  # noqa: S311 - jitter, not secrecy
        raise Conflict(
            "the profile was changed by other requests at the same moment; read it and try again"
        )
