"""Profile use cases: upsert by identity, 360° view, edits, merge, consent, tags, points.

Every change reads the profile, computes the new one here, and commits it with a condition on
the revision it read; a concurrent change makes the commit fail and the use case run again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache
from typing import TypeVar

from crm.auth import Caller, Permission
from crm.clock import Clock, IdFactory, new_id, utc_now
from crm.config import settings
from crm.errors import Conflict, InvalidInput, NotFound
from crm.keys import DataKeys, blind_index, data_keys
from crm.pii import BlindIndex, mask_email, mask_phone
from crm.profiles.fold import combine
from crm.profiles.models import (
    MAX_IDENTITIES,
    MAX_TAGS,
    PII_CHANNELS,
    Channel,
    ConsentChange,
    ConsentPurpose,
    ConsentState,
    Customer360,
    EditProfile,
    Identity,
    IdentityView,
    MergeCustomers,
    PointsChange,
    PointsEntry,
    PointsView,
    ProfileAttributes,
    TagChange,
    TagState,
    TimelineEntry,
    UpsertCustomer,
    UpsertResult,
)
from crm.profiles.pii_codec import PiiCodec
from crm.profiles.record import LedgerEntry, ProfileRecord, StoredIdentity
from crm.profiles.store import (
    AppendEntry,
    ClaimIdentity,
    DuplicateEntry,
    IdentityTaken,
    ProfileStore,
    ReleaseIdentity,
    SaveProfile,
    StaleProfile,
    Write,
)

T = TypeVar("T")

MAX_ATTEMPTS = 5
MAX_MERGE_HOPS = 5
TIMELINE_LENGTH = 20
CLOCK_SKEW = timedelta(minutes=5)


def retry_on_stale(attempt: Callable[[], T]) -> T:
    """Run a read-modify-write until it commits against the revision it read."""
    for _ in range(MAX_ATTEMPTS - 1):
        try:
            return attempt()
        except StaleProfile:
            continue
    return attempt()


class ProfileService:
    def __init__(
        self,
        store: ProfileStore,
        keys: DataKeys,
        index: Callable[[], BlindIndex],
        clock: Clock = utc_now,
        ids: IdFactory = new_id,
    ) -> None:
        self._store = store
        self._keys = keys
        self._index = index
        self._clock = clock
        self._ids = ids

    # ================================================================ identities
    def stored_identity(self, identity: Identity) -> StoredIdentity:
        if identity.channel in PII_CHANNELS:
            mask = mask_phone if identity.channel is Channel.PHONE else mask_email
            return StoredIdentity(
                channel=identity.channel,
                key=self._index().token(identity.channel, identity.external_id),
                display=mask(identity.external_id),
            )
        return StoredIdentity(
            channel=identity.channel, key=identity.external_id, display=identity.external_id
        )

    def _wanted_identities(self, body: UpsertCustomer) -> list[StoredIdentity]:
        """The identities asked for, plus the phone and email given as attributes."""
        identities = list(body.identities)
        attrs = body.attributes
        if attrs.phone:
            identities.append(Identity(channel=Channel.PHONE, external_id=attrs.phone))
        if attrs.email:
            identities.append(Identity(channel=Channel.EMAIL, external_id=attrs.email))
        unique = {(i.channel, i.key): i for i in map(self.stored_identity, identities)}
        return list(unique.values())

    # ================================================================ reads
    def load(self, customer_id: str) -> ProfileRecord:
        """The live profile for an id, following merges to the profile that absorbed it."""
        record = self._store.get(customer_id)
        for _ in range(MAX_MERGE_HOPS):
            if record is None:
                raise NotFound(f"no customer {customer_id}")
            if record.merged_into is None:
                return record
            record = self._store.get(record.merged_into)
        raise Conflict(f"customer {customer_id} is in a merge chain too long to follow")

    def read_customer_360(self, caller: Caller, customer_id: str) -> Customer360:
        caller.require(Permission.READ_PROFILE, customer_id)
        record = self.load(customer_id)
        return self._view(caller, record, PiiCodec(self._keys), customer_id)

    def _view(
        self,
        caller: Caller,
        record: ProfileRecord,
        codec: PiiCodec,
        asked_as: str | None = None,
        new: bool = False,
    ) -> Customer360:
        full = caller.can(Permission.READ_PII, asked_as or record.customer_id)
        # A new profile has no history yet.
        timeline = [] if new else self._timeline(record, codec, full)
        return Customer360(
            customer_id=record.customer_id,
            version=record.version,
            created_at=record.created_at,
            updated_at=record.updated_at,
            pii="full" if full else "masked",
            attributes=codec.view(record, full),
            identities=[
                IdentityView(channel=i.channel, external_id=i.display) for i in record.identities
            ],
            consent={ConsentPurpose(k): v for k, v in record.consent.items()},
            tags=record.tags,
            points_balance=record.points_balance,
            orders=record.aggregates.orders,
            behaviour=record.aggregates.behaviour,
            timeline=timeline,
            merged_from=record.merged_from,
            scores=record.scores,
            segments=record.segments,
        )

    def _timeline(self, record: ProfileRecord, codec: PiiCodec, full: bool) -> list[TimelineEntry]:
        entries: list[LedgerEntry] = []
        for customer_id in [record.customer_id, *record.merged_from]:
            page, _ = self._store.entries("EVT", customer_id, TIMELINE_LENGTH)
            entries.extend(page)
        entries.sort(key=lambda e: e.at, reverse=True)
        shown = []
        for e in entries[:TIMELINE_LENGTH]:
            note = codec.open_note(record, {**e.body, "customer_id": e.customer_id}, full)
            shown.append(TimelineEntry.model_validate({**e.body, "note": note}))
        return shown

    # ================================================================ upsert and merge
    def upsert_customer(self, caller: Caller, body: UpsertCustomer) -> UpsertResult:
        caller.require(Permission.CREATE_PROFILE)
        codec = PiiCodec(self._keys)
        record, created, merged = self._resolve(
            body.attributes, self._wanted_identities(body), codec
        )
        return UpsertResult(
            customer_id=record.customer_id,
            created=created,
            merged=merged,
            profile=self._view(caller, record, codec, new=created),
        )

    def resolve_identity(self, identity: Identity) -> str:
        """The customer an identity belongs to, created if unknown (events from new members)."""
        wanted = [self.stored_identity(identity)]
        record, _, _ = self._resolve(ProfileAttributes(), wanted, PiiCodec(self._keys))
        return record.customer_id

    def _resolve(
        self, attrs: ProfileAttributes, wanted: list[StoredIdentity], codec: PiiCodec
    ) -> tuple[ProfileRecord, bool, list[str]]:
        if len(wanted) > MAX_IDENTITIES:
            raise InvalidInput(f"a profile holds at most {MAX_IDENTITIES} identities")
        for _ in range(MAX_ATTEMPTS):
            try:
                return self._resolve_once(attrs, wanted, codec)
            except (StaleProfile, IdentityTaken):
                continue  # somebody claimed one of these identities meanwhile: resolve again
        raise Conflict("the profile kept changing while it was being upserted; try again")

    def _resolve_once(
        self, attrs: ProfileAttributes, wanted: list[StoredIdentity], codec: PiiCodec
    ) -> tuple[ProfileRecord, bool, list[str]]:
        owners = self._store.owners([(i.channel, i.key) for i in wanted])
        now = self._clock()
        if not owners:
            record = ProfileRecord(customer_id=self._ids(), created_at=now, updated_at=now)
            codec.apply(record, attrs, only_missing=False)
            record.identities = wanted
            writes: list[Write] = [SaveProfile(record, None)]
            writes += [ClaimIdentity(i.channel, i.key, record.customer_id) for i in wanted]
            self._store.commit(writes)
            return record, True, []

        # The same person known under several profiles: fold the younger ones into the oldest.
        records = sorted(
            {r.customer_id: r for r in map(self.load, set(owners.values()))}.values(),
            key=lambda r: (r.created_at, r.customer_id),
        )
        survivor, absorbed = records[0], records[1:]
        for source in absorbed:
            survivor = self._merge_records(survivor, source, codec)
        known = {(i.channel, i.key) for i in survivor.identities}
        new = [i for i in wanted if (i.channel, i.key) not in known]
        if len(survivor.identities) + len(new) > MAX_IDENTITIES:
            raise Conflict(f"a profile holds at most {MAX_IDENTITIES} identities")
        before = survivor.model_dump()
        codec.apply(survivor, attrs, only_missing=True)
        if new or survivor.model_dump() != before:
            survivor.identities = [*survivor.identities, *new]
            self.save(
                survivor, *[ClaimIdentity(i.channel, i.key, survivor.customer_id) for i in new]
            )
        return survivor, False, [r.customer_id for r in absorbed]

    def merge_customers(
        self, caller: Caller, customer_id: str, body: MergeCustomers
    ) -> Customer360:
        caller.require(Permission.MERGE_PROFILES)
        if body.source_customer_id == customer_id:
            raise InvalidInput("a profile cannot be merged into itself")

        def attempt() -> Customer360:
            survivor = self._live(customer_id)
            source = self._live(body.source_customer_id)
            codec = PiiCodec(self._keys)
            merged = self._merge_records(survivor, source, codec)
            return self._view(caller, merged, codec)

        return retry_on_stale(attempt)

    def _live(self, customer_id: str) -> ProfileRecord:
        record = self._store.get(customer_id)
        if record is None:
            raise NotFound(f"no customer {customer_id}")
        if record.merged_into:
            raise Conflict(f"customer {customer_id} was already merged into {record.merged_into}")
        return record

    def _merge_records(
        self, survivor: ProfileRecord, source: ProfileRecord, codec: PiiCodec
    ) -> ProfileRecord:
        """Fold `source` into `survivor` in one transaction; both histories stay readable."""
        identities = {(i.channel, i.key): i for i in [*survivor.identities, *source.identities]}
        if len(identities) > MAX_IDENTITIES:
            raise Conflict(f"the merged profile would hold more than {MAX_IDENTITIES} identities")
        now = self._clock()
        merged = survivor.model_copy(deep=True)
        codec.copy_missing(source, merged)
        consent = dict(source.consent)
        for purpose, state in survivor.consent.items():
            other = consent.get(purpose)
            if other is None or state.decided_at >= other.decided_at:
                consent[purpose] = state
        merged.consent = consent
        merged.tags = {**source.tags, **survivor.tags}
        merged.points_balance += source.points_balance
        merged.aggregates = combine(survivor.aggregates, source.aggregates)
        merged.identities = list(identities.values())
        merged.merged_from = [*survivor.merged_from, source.customer_id, *source.merged_from]
        merged.rev += 1
        merged.updated_at = now
        closed = source.model_copy(
            update={"merged_into": survivor.customer_id, "rev": source.rev + 1}
        )
        closed.updated_at = now
        writes: list[Write] = [SaveProfile(merged, survivor.rev), SaveProfile(closed, source.rev)]
        own = {(i.channel, i.key) for i in survivor.identities}
        writes += [
            ClaimIdentity(i.channel, i.key, survivor.customer_id, taken_from=source.customer_id)
            for i in source.identities
            if (i.channel, i.key) not in own
        ]
        if source.points_balance:
            writes.append(AppendEntry(self._merged_points(merged, source, now)))
        self._store.commit(writes)
        return merged

    @staticmethod
    def _merged_points(merged: ProfileRecord, source: ProfileRecord, now: datetime) -> LedgerEntry:
        """The survivor's points ledger shows where the absorbed balance came from."""
        entry = PointsEntry(
            txn_id=f"merge-{source.customer_id}",
            kind="earn",
            points=source.points_balance,
            balance_after=merged.points_balance,
            reason=f"merged from customer {source.customer_id}",
            channel=None,
            store_id=None,
            at=now,
        )
        return LedgerEntry(
            key=f"points:merge-{source.customer_id}",
            kind="PTS",
            customer_id=merged.customer_id,
            at=now,
            body=entry.model_dump(mode="json"),
        )

    # ================================================================ edits
    def edit_profile(self, caller: Caller, customer_id: str, body: EditProfile) -> Customer360:
        caller.require(Permission.EDIT_PROFILE, customer_id)

        def attempt() -> Customer360:
            record = self.load(customer_id)
            if record.version != body.version:
                raise Conflict(
                    f"the profile is at version {record.version}, the edit was based on "
                    f"version {body.version}: read it again and re-apply the edit"
                )
            codec = PiiCodec(self._keys)
            writes = self._edit_writes(record, body.attributes, codec)
            record.version += 1
            try:
                self.save(record, *writes)
            except IdentityTaken as taken:
                raise Conflict(
                    f"this {taken.channel} belongs to another customer; merge the two profiles"
                ) from None
            return self._view(caller, record, codec, customer_id)

        return retry_on_stale(attempt)

    def _edit_writes(
        self, record: ProfileRecord, attrs: ProfileAttributes, codec: PiiCodec
    ) -> list[Write]:
        """Apply an edit; a changed phone or email moves its identity with it."""
        writes: list[Write] = []
        codec.apply(record, attrs, only_missing=False)
        for field, channel in (("phone", Channel.PHONE), ("email", Channel.EMAIL)):
            if field not in attrs.model_fields_set:
                continue
            old = [i for i in record.identities if i.channel is channel]
            value = getattr(attrs, field)
            new = (
                self.stored_identity(Identity(channel=channel, external_id=value))
                if value
                else None
            )
            if new and any(o.key == new.key for o in old):
                continue
            # The previous number stops identifying the customer; other channels stay.
            keep = [i for i in record.identities if i.channel is not channel]
            writes += [ReleaseIdentity(o.channel, o.key, record.customer_id) for o in old]
            if new:
                writes.append(ClaimIdentity(new.channel, new.key, record.customer_id))
                keep.append(new)
            record.identities = keep
        return writes

    def change_consent(
        self, caller: Caller, customer_id: str, body: ConsentChange
    ) -> dict[ConsentPurpose, ConsentState]:
        caller.require(Permission.EDIT_CONSENT, customer_id)
        now = self._clock()
        decided_at = body.decided_at or now
        if decided_at > now + CLOCK_SKEW:
            raise InvalidInput("decided_at lies in the future")

        def attempt() -> dict[ConsentPurpose, ConsentState]:
            record = self.load(customer_id)
            current = record.consent.get(body.purpose)
            if current is not None and current.decided_at > decided_at:
                raise Conflict(
                    f"a later decision on {body.purpose.value} is recorded "
                    f"({current.decided_at.isoformat()}); this one is older and was not applied"
                )
            state = ConsentState(granted=body.granted, decided_at=decided_at, source=body.source)
            record.consent[body.purpose] = state
            entry = LedgerEntry(
                key=f"consent:{self._ids()}",
                kind="CNS",
                customer_id=record.customer_id,
                at=decided_at,
                body={
                    "purpose": body.purpose,
                    "by": caller.subject,
                    **state.model_dump(mode="json"),
                },
            )
            self.save(record, AppendEntry(entry))
            return {ConsentPurpose(k): v for k, v in record.consent.items()}

        return retry_on_stale(attempt)

    def change_tags(self, caller: Caller, customer_id: str, body: TagChange) -> dict[str, TagState]:
        caller.require(Permission.EDIT_TAGS, customer_id)

        def attempt() -> dict[str, TagState]:
            record = self.load(customer_id)
            tags = {k: v for k, v in record.tags.items() if k not in body.remove}
            now = self._clock()
            for tag in body.add:
                if tag.name not in tags:
                    tags[tag.name] = TagState(kind=tag.kind, added_at=now, added_by=caller.subject)
            if len(tags) > MAX_TAGS:
                raise Conflict(f"a profile holds at most {MAX_TAGS} tags")
            if tags != record.tags:
                record.tags = tags
                self.save(record)
            return record.tags

        return retry_on_stale(attempt)

    def save(self, record: ProfileRecord, *extra: Write) -> None:
        """Commit a changed profile (and its companions) against the revision it was read at."""
        expected = record.rev
        record.rev += 1
        record.updated_at = self._clock()
        self._store.commit([SaveProfile(record, expected), *extra])

    # ================================================================ loyalty points
    def change_points(self, caller: Caller, customer_id: str, body: PointsChange) -> PointsView:
        caller.require(Permission.ADJUST_POINTS, customer_id)

        def attempt() -> PointsView:
            record = self.load(customer_id)
            delta = body.points if body.kind == "earn" else -body.points
            if record.points_balance + delta < 0:
                raise Conflict(
                    f"insufficient points: balance {record.points_balance}, redeeming {body.points}"
                )
            record.points_balance += delta
            now = self._clock()
            entry = PointsEntry(
                txn_id=body.txn_id,
                kind=body.kind,
                points=body.points,
                balance_after=record.points_balance,
                reason=body.reason,
                channel=body.channel,
                store_id=body.store_id,
                at=now,
            )
            ledger = LedgerEntry(
                key=f"points:{body.txn_id}",
                kind="PTS",
                customer_id=record.customer_id,
                at=now,
                body=entry.model_dump(mode="json"),
            )
            try:
                self.save(record, AppendEntry(ledger))
            except DuplicateEntry as duplicate:
                if duplicate.existing.get("customer_id") not in self._ids_of(record):
                    raise Conflict(f"txn_id {body.txn_id} was used for another customer") from None
            return self.points_view(caller, customer_id)

        return retry_on_stale(attempt)

    @staticmethod
    def _ids_of(record: ProfileRecord) -> set[str]:
        return {record.customer_id, *record.merged_from}

    def points_view(
        self, caller: Caller, customer_id: str, limit: int = 20, page_token: str | None = None
    ) -> PointsView:
        caller.require(Permission.READ_PROFILE, customer_id)
        record = self.load(customer_id)
        entries, next_token = self._store.entries("PTS", record.customer_id, limit, page_token)
        return PointsView(
            customer_id=record.customer_id,
            balance=record.points_balance,
            entries=[PointsEntry.model_validate(e.body) for e in entries],
            next_token=next_token,
        )


@cache
def profile_service() -> ProfileService:
    return ProfileService(ProfileStore(settings().customers_table), data_keys(), blind_index)
