"""Identity resolution: create a customer or find the profile its identities belong to, and
merge profiles that turn out to be one person.

Only callers allowed to merge (support managers, admins) merge by naming identities of several
profiles in an upsert; for anybody else the upsert writes nothing and opens a merge suggestion
that a manager approves or dismisses (`merge_suggestions.py`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from crm.auth import Caller, Permission
from crm.errors import Conflict, FieldProblem, InvalidInput, NotFound
from crm.profiles.consent import apply_history
from crm.profiles.pii_codec import PiiCodec
from crm.profiles.record_models import (
    MAX_IDENTITIES,
    Channel,
    Identity,
    LinkingIdentity,
    MergeReason,
    ProfileAttributes,
)
from crm.profiles.records import (
    LedgerEntry,
    MergeSuggestionRecord,
    ProfileRecord,
    StoredIdentity,
    suggestion_id_for,
)
from crm.profiles.service import ProfileService, SegmentShift
from crm.profiles.store import (
    AppendEntry,
    ClaimIdentity,
    DropScores,
    IdentityTaken,
    SaveProfile,
    StaleProfile,
    Write,
)

# The event folder resolves identities and loads none of the API's requests and views: those
# are types here, imported where an upsert, a merge or a view builds them (docs/architecture.md,
# "Cold starts"; tests/unit/platform/test_first_request_imports.py).
if TYPE_CHECKING:
    from crm.profiles.change_models import ConsentChange, MergeCustomers
    from crm.profiles.models import Customer360, MergeSuggestionView, UpsertCustomer, UpsertResult
    from crm.profiles.views import CustomerViews


# Profiles read beforehand for many customers at once (a historical import's chunk): the live
# profile behind each id (merges followed), or why there is none (crm.profiles.service.Loaded).
ReadProfiles = Mapping[str, ProfileRecord | Exception]


@dataclass
class Resolution:
    record: ProfileRecord
    created: bool = False
    merged: list[str] = field(default_factory=list)
    suggestion: MergeSuggestionRecord | None = None
    # A new customer not written yet: these claims of its identities commit with its profile
    # (`defer_create`: a historical import puts them in the transaction of its history).
    pending: list[Write] | None = None


class IdentityResolution:
    def __init__(self, profiles: ProfileService, views: CustomerViews) -> None:
        self._profiles = profiles
        self._views = views

    # ------------------------------------------------------------ upsert
    def upsert_customer(self, caller: Caller, body: UpsertCustomer) -> UpsertResult:
        from crm.profiles.models import UpsertResult

        caller.require(Permission.CREATE_PROFILE)
        self._profiles.check_residency([("residency", body.residency)])
        codec = self._profiles.codec()
        found = self._resolve(
            body.attributes,
            self.wanted_identities(body.identities, body.attributes),
            codec,
            may_merge=caller.can(Permission.MERGE_PROFILES),
            asked_by=caller.subject,
        )
        suggestion = found.suggestion
        return UpsertResult(
            customer_id=found.record.customer_id,
            created=found.created,
            merged=found.merged,
            merge_suggestion=suggestion_view(suggestion) if suggestion else None,
            profile=self._views.for_caller(caller, found.record, codec, new=found.created),
        )

    def resolve_identity(self, identity: Identity) -> str:
        """The customer an identity belongs to, created if unknown (events from new members).

        One identity has one owner, so this never meets several profiles and never merges:
        only staff who may merge link profiles."""
        return self.resolve_stored(self._profiles.stored_identity(identity))

    def resolve_stored(self, identity: StoredIdentity) -> str:
        """The same, for an identity already in its stored form (a phone as its blind-index
        token), as queued events carry it."""
        found = self._resolve(
            ProfileAttributes(), [identity], self._profiles.codec(), may_merge=False,
            asked_by="system",
        )  # fmt: skip
        return found.record.customer_id

    def resolve_all(
        self, identities: Sequence[StoredIdentity]
    ) -> dict[tuple[str, str], str | Exception]:
        """`resolve_stored` for the identities of a batch of events: who owns them is read
        with one BatchGetItem; only unknown ones (a new member) go through the creating path.
        One identity that cannot be resolved gets its exception; the others are resolved."""
        wanted = {(i.channel.value, i.key): i for i in identities}
        owners: dict[tuple[str, str], str | Exception] = {}
        if wanted:
            owners |= self._profiles.store.owners(list(wanted))
        for key, identity in wanted.items():
            if key in owners:
                continue
            try:
                owners[key] = self.resolve_stored(identity)
            except Exception as exc:  # one identity's failure is its own
                owners[key] = exc
        return owners

    def import_customer(
        self,
        attrs: ProfileAttributes,
        wanted: list[StoredIdentity],
        codec: PiiCodec,
        owners: dict[tuple[str, str], str],
        defer_create: bool = False,
        profiles: ReadProfiles | None = None,
        consent: Sequence[ConsentChange] = (),
    ) -> Resolution:
        """A historical import's customer (crm.profiles.history_import): created, or matched
        when its identities all name one customer (its attributes then fill only empty
        fields). Identities of several customers are refused (Conflict) and nothing is
        written: merging is a manager's decision. `owners` are the identities' owners as the
        import read them for many customers at once (one BatchGetItem per 100 keys); they
        serve the first try, a retry reads them again. So do `profiles`, the owners' profiles
        as the import read them together (resolution changes a copy). Rule segments are left
        to the next segment run (nothing is announced: an import is not news). With
        `defer_create`, a new customer is returned unwritten with the writes that claim its
        identities (`pending`), for the caller to commit with its first changes. Its past
        `consent` decisions are recorded with it (each purpose's latest; none older than what
        a matched profile holds), each with its ledger entry, in the same writes."""
        named = {owners[key] for i in wanted if (key := (i.channel.value, i.key)) in owners}
        if len(named) > 1:
            raise Conflict(
                f"its identities belong to {len(named)} different customers; nothing was "
                "imported for it (merge them first, or import it without the identities "
                "of the others)"
            )
        return self._resolve(attrs, wanted, codec, may_merge=False, asked_by="import",
                             owners=owners, evaluate_rules=False,
                             defer_create=defer_create, profiles=profiles,
                             consent=consent)  # fmt: skip

    def wanted_identities(
        self, asked: Sequence[Identity], attrs: ProfileAttributes
    ) -> list[StoredIdentity]:
        """The identities asked for, plus the phone and email given as attributes."""
        identities = list(asked)
        if attrs.phone:
            identities.append(Identity(channel=Channel.PHONE, external_id=attrs.phone))
        if attrs.email:
            identities.append(Identity(channel=Channel.EMAIL, external_id=attrs.email))
        stored = map(self._profiles.stored_identity, identities)
        return list({(i.channel, i.key): i for i in stored}.values())

    def _resolve(
        self,
        attrs: ProfileAttributes,
        wanted: list[StoredIdentity],
        codec: PiiCodec,
        may_merge: bool,
        asked_by: str,
        owners: dict[tuple[str, str], str] | None = None,
        evaluate_rules: bool = True,
        defer_create: bool = False,
        profiles: ReadProfiles | None = None,
        consent: Sequence[ConsentChange] = (),
    ) -> Resolution:
        if len(wanted) > MAX_IDENTITIES:
            raise InvalidInput(f"a profile holds at most {MAX_IDENTITIES} identities")
        known, known_profiles = owners, profiles

        def attempt() -> Resolution:
            nonlocal known, known_profiles
            # What was read beforehand serves the first try only: a retry follows a change.
            read, known = known, None
            read_profiles, known_profiles = known_profiles, None
            try:
                return self._resolve_once(
                    attrs,
                    wanted,
                    codec,
                    may_merge,
                    asked_by,
                    read,
                    evaluate_rules,
                    defer_create,
                    read_profiles,
                    consent,
                )
            except IdentityTaken:
                # Somebody claimed one of these identities meanwhile: resolve again.
                raise StaleProfile("identity claimed meanwhile") from None

        return self._profiles.retry(attempt)

    def _resolve_once(
        self,
        attrs: ProfileAttributes,
        wanted: list[StoredIdentity],
        codec: PiiCodec,
        may_merge: bool,
        asked_by: str,
        read: dict[tuple[str, str], str] | None = None,
        evaluate_rules: bool = True,
        defer_create: bool = False,
        read_profiles: ReadProfiles | None = None,
        consent: Sequence[ConsentChange] = (),
    ) -> Resolution:
        profiles = self._profiles
        if read is None:
            owners = profiles.store.owners([(i.channel, i.key) for i in wanted])
        else:
            owners = {k: o for i in wanted if (o := read.get(k := (i.channel.value, i.key)))}
        now = profiles.clock()
        if not owners:
            record = ProfileRecord(
                customer_id=profiles.ids(), residency=profiles.region, created_at=now,
                updated_at=now,
            )  # fmt: skip
            codec.apply(record, attrs, only_missing=False)
            record.identities = wanted
            decided = apply_history(record, consent, asked_by, now, profiles.ids)
            if evaluate_rules:
                record.segments = sorted(profiles.rules.evaluate(record, now))
            writes: list[Write] = [SaveProfile(record, None)]
            writes += [ClaimIdentity(i.channel, i.key, record.customer_id) for i in wanted]
            writes += [AppendEntry(entry) for entry in decided]
            if defer_create:
                return Resolution(record, created=True, pending=writes[1:])
            profiles.store.commit(writes)
            if record.segments:
                profiles.rules.announce(
                    [SegmentShift(record.customer_id, (), tuple(record.segments))]
                )
            return Resolution(record, created=True)

        records = self._oldest_first(set(owners.values()), read_profiles)
        if len(records) > 1 and not may_merge:
            # One person under several profiles, named by a caller who may not merge: write
            # nothing, and let a manager decide.
            linking = [
                LinkingIdentity(channel=i.channel, external_id=i.display, customer_id=owner)
                for i in wanted
                if (owner := owners.get((i.channel, i.key))) is not None
            ]
            suggestion = self.suggest_merge(
                [r.customer_id for r in records], MergeReason.UPSERT, asked_by, linking
            )
            return Resolution(records[0], suggestion=suggestion)

        # The same person known under several profiles: fold the younger ones into the oldest.
        survivor, absorbed = records[0], records[1:]
        for source in absorbed:
            survivor = self._merge_records(survivor, source, codec)
        known = {(i.channel, i.key) for i in survivor.identities}
        new = [i for i in wanted if (i.channel, i.key) not in known]
        if len(survivor.identities) + len(new) > MAX_IDENTITIES:
            raise Conflict(f"a profile holds at most {MAX_IDENTITIES} identities")
        before = survivor.model_dump()
        codec.apply(survivor, attrs, only_missing=True)
        decided = apply_history(survivor, consent, asked_by, now, profiles.ids)
        if new or survivor.model_dump() != before:
            survivor.identities = [*survivor.identities, *new]
            profiles.save(
                survivor,
                *[ClaimIdentity(i.channel, i.key, survivor.customer_id) for i in new],
                *[AppendEntry(entry) for entry in decided],
                evaluate_rules=evaluate_rules,
            )
        return Resolution(survivor, merged=[r.customer_id for r in absorbed])

    def _oldest_first(
        self, customer_ids: set[str], read: ReadProfiles | None = None
    ) -> list[ProfileRecord]:
        """The live profiles behind these ids (merges followed), the oldest first: those
        `read` holds as it holds them (a copy: the caller changes it), the others loaded."""

        def live_profile(customer_id: str) -> ProfileRecord:
            found = read.get(customer_id) if read is not None else None
            if found is None:
                return self._profiles.load(customer_id)
            if isinstance(found, Exception):  # as `load` raises it: NotFound, or a chain too long
                raise found
            return found.model_copy(deep=True)

        live = {r.customer_id: r for r in map(live_profile, customer_ids)}
        return sorted(live.values(), key=lambda r: (r.created_at, r.customer_id))

    def suggest_merge(
        self,
        customer_ids: list[str],
        reason: MergeReason,
        requested_by: str,
        identities: list[LinkingIdentity],
    ) -> MergeSuggestionRecord:
        """Queue these profiles for a manager; the same set asked again is the same entry."""
        return self._profiles.store.suggest_merge(
            MergeSuggestionRecord(
                suggestion_id=suggestion_id_for(customer_ids),
                reason=reason,
                customer_ids=customer_ids,
                identities=identities,
                requested_by=requested_by,
                requested_at=self._profiles.clock(),
            )
        )

    def merge_all(self, customer_ids: list[str]) -> tuple[ProfileRecord, list[str]]:
        """Fold every live profile behind these ids into the oldest (a manager's approval).
        Profiles merged meanwhile are followed, so approving twice changes nothing."""
        codec = self._profiles.codec()

        def attempt() -> tuple[ProfileRecord, list[str]]:
            records = self._oldest_first(set(customer_ids))
            survivor = records[0]
            for source in records[1:]:
                survivor = self._merge_records(survivor, source, codec)
            return survivor, [r.customer_id for r in records[1:]]

        return self._profiles.retry(attempt)

    # ------------------------------------------------------------ merge
    def merge_customers(
        self, caller: Caller, customer_id: str, body: MergeCustomers
    ) -> Customer360:
        caller.require(Permission.MERGE_PROFILES)

        def attempt() -> Customer360:
            survivor = self._live(customer_id)  # an unknown profile is a 404 before anything
            if body.source_customer_id == customer_id:
                raise InvalidInput(
                    "a profile cannot be merged into itself",
                    [FieldProblem("source_customer_id", "the customer merged into")],
                )
            source = self._live(body.source_customer_id)
            codec = self._profiles.codec()
            merged = self._merge_records(survivor, source, codec)
            return self._views.view(caller, merged, codec)

        return self._profiles.retry(attempt)

    def _live(self, customer_id: str) -> ProfileRecord:
        record = self._profiles.store.get(customer_id)
        if record is None:
            raise NotFound(f"no customer {customer_id}")
        if record.merged_into:
            raise Conflict(f"customer {customer_id} was already merged into {record.merged_into}")
        return record

    def _merge_records(
        self, survivor: ProfileRecord, source: ProfileRecord, codec: PiiCodec
    ) -> ProfileRecord:
        """Fold `source` into `survivor` in one transaction; both histories stay readable."""
        profiles = self._profiles
        identities = {(i.channel, i.key): i for i in [*survivor.identities, *source.identities]}
        if len(identities) > MAX_IDENTITIES:
            raise Conflict(f"the merged profile would hold more than {MAX_IDENTITIES} identities")
        now = profiles.clock()
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
        # Imported here: the aggregates' folding (and the event models it reads) is a merge's
        # work, not a read's (the API's customer routes load this module).
        from crm.profiles.aggregates import combine

        merged.aggregates = combine(survivor.aggregates, source.aggregates)
        merged.identities = list(identities.values())
        merged.merged_from = [*survivor.merged_from, source.customer_id, *source.merged_from]
        merged.segments = sorted(profiles.rules.evaluate(merged, now))
        merged.rev += 1
        merged.updated_at = now
        # The absorbed profile leaves every segment: its member is the survivor now.
        closed = source.model_copy(
            update={"merged_into": survivor.customer_id, "rev": source.rev + 1, "segments": []}
        )
        closed.updated_at = now
        # The absorbed customer's scores item goes too: it is what lists them in the computed
        # segments (tiers, RFM cells), and the next run scores the merged profile.
        writes: list[Write] = [SaveProfile(merged, survivor.rev), SaveProfile(closed, source.rev),
                               DropScores(source.customer_id)]  # fmt: skip
        own = {(i.channel, i.key) for i in survivor.identities}
        writes += [
            ClaimIdentity(i.channel, i.key, survivor.customer_id, taken_from=source.customer_id)
            for i in source.identities
            if (i.channel, i.key) not in own
        ]
        if source.points_balance:
            writes.append(AppendEntry(self._merged_points(merged, source, now)))
        profiles.store.commit(writes)
        shifts = [
            SegmentShift(merged.customer_id, tuple(survivor.segments), tuple(merged.segments)),
            SegmentShift(source.customer_id, tuple(source.segments), ()),
        ]
        profiles.rules.announce([s for s in shifts if s.before != s.after])
        return merged

    @staticmethod
    def _merged_points(merged: ProfileRecord, source: ProfileRecord, now: datetime) -> LedgerEntry:
        """The survivor's points ledger shows where the absorbed balance came from."""
        from crm.profiles.change_models import PointsEntry

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


def suggestion_view(record: MergeSuggestionRecord) -> MergeSuggestionView:
    from crm.profiles.models import MergeSuggestionView

    return MergeSuggestionView.model_validate(record.model_dump())
