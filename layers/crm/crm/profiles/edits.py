"""Changing a profile: attribute edits, consent decisions, tags.

A customer changing their own phone or email must not learn whether another customer holds
it. Their change is therefore never checked against the identities at all: it is kept as a
pending verification (sealed, with an expiry) and answered the same way whether the number is
free or taken. A verification service, once the customer proved they hold the number (a code
sent through it), completes it with `complete_contact_verification`: the number becomes the
customer's if it is still free, and a merge suggestion for the managers otherwise. Staff edits
switch the number at once and name a conflict (409), as they may read other profiles anyway.
"""

from datetime import timedelta
from typing import Literal

from crm.auth import Caller, Permission
from crm.clock import CLOCK_SKEW
from crm.errors import Conflict, FieldProblem, InvalidInput, NotFound
from crm.models import Output
from crm.profiles.change_models import ConsentChange, ConsentView, EditProfile, TagChange, TagsView
from crm.profiles.consent import consent_entry
from crm.profiles.identity import IdentityResolution
from crm.profiles.models import (
    CONTACT_CHANNELS,
    MAX_TAGS,
    ConsentPurpose,
    ConsentState,
    ContactField,
    Customer360,
    CustomerSelfView,
    Identity,
    LinkingIdentity,
    MergeReason,
    ProfileAttributes,
    TagState,
)
from crm.profiles.pii_codec import PiiCodec
from crm.profiles.records import ProfileRecord, StoredIdentity
from crm.profiles.service import ProfileService
from crm.profiles.store import (
    AppendEntry,
    ClaimIdentity,
    DuplicateEntry,
    IdentityTaken,
    ReleaseIdentity,
    StaleProfile,
    Write,
)
from crm.profiles.views import CustomerViews

# How long a customer has to verify a new phone or email before asking again.
PENDING_CONTACT_TTL = timedelta(hours=24)


class VerificationOutcome(Output):
    """What completing a verified contact change did."""

    customer_id: str
    field: ContactField
    outcome: Literal["applied", "expired", "conflict"]
    suggestion_id: str | None = None  # a manager's merge suggestion, for a conflict


class ProfileEdits:
    def __init__(
        self, profiles: ProfileService, views: CustomerViews, identity: IdentityResolution
    ) -> None:
        self._profiles = profiles
        self._views = views
        self._identity = identity

    def edit_profile(
        self, caller: Caller, customer_id: str, body: EditProfile
    ) -> Customer360 | CustomerSelfView:
        caller.require(Permission.EDIT_PROFILE, customer_id)

        def attempt() -> Customer360 | CustomerSelfView:
            record = self._profiles.load(customer_id)
            if record.version != body.version:
                raise Conflict(
                    f"the profile is at version {record.version}, the edit was based on "
                    f"version {body.version}: read it again and re-apply the edit"
                )
            codec = self._profiles.codec()
            attrs = body.attributes
            if not caller.is_staff:
                attrs = self._hold_contact_changes(record, attrs, codec)
            writes = self._edit_writes(record, attrs, codec)
            record.version += 1
            try:
                self._profiles.save(record, *writes)
            except IdentityTaken as taken:
                # Only staff edits claim identities (see _hold_contact_changes).
                raise Conflict(
                    f"this {taken.channel} belongs to another customer; merge the two profiles"
                ) from None
            return self._views.for_caller(caller, record, codec, customer_id)

        return self._profiles.retry(attempt)

    def _hold_contact_changes(
        self, record: ProfileRecord, attrs: ProfileAttributes, codec: PiiCodec
    ) -> ProfileAttributes:
        """A customer's new phone or email waits, sealed, for verification; the rest of the
        edit (and clearing a number, which reveals nothing) applies at once."""
        now = self._profiles.clock()
        held: set[str] = set()
        for field, channel in CONTACT_CHANNELS.items():
            value = getattr(attrs, field)
            if field not in attrs.model_fields_set or value is None:
                continue
            held.add(field)
            wanted = self._identity_of(field, value)
            if any(i.channel is channel and i.key == wanted.key for i in record.identities):
                record.pending.pop(field, None)  # already theirs: nothing to verify
                continue
            codec.set_pending(record, field, value, now, now + PENDING_CONTACT_TTL)
        if not held:
            return attrs
        kept = attrs.model_fields_set - held
        return ProfileAttributes.model_construct(kept, **{k: getattr(attrs, k) for k in kept})

    def _identity_of(self, field: ContactField, value: str) -> StoredIdentity:
        identity = Identity(channel=CONTACT_CHANNELS[field], external_id=value)
        return self._profiles.stored_identity(identity)

    def _edit_writes(
        self, record: ProfileRecord, attrs: ProfileAttributes, codec: PiiCodec
    ) -> list[Write]:
        """Apply an edit; a changed phone or email moves its identity with it."""
        writes: list[Write] = []
        codec.apply(record, attrs, only_missing=False)
        for field in CONTACT_CHANNELS:
            if field not in attrs.model_fields_set:
                continue
            # A number set by staff or cleared replaces any change the customer asked for.
            record.pending.pop(field, None)
            value = getattr(attrs, field)
            new = self._identity_of(field, value) if value else None
            writes += self._switch_identity(record, field, new)
        return writes

    def _switch_identity(
        self, record: ProfileRecord, field: ContactField, new: StoredIdentity | None
    ) -> list[Write]:
        """The previous number stops identifying the customer; other channels stay."""
        channel = CONTACT_CHANNELS[field]
        old = [i for i in record.identities if i.channel is channel]
        if new and any(o.key == new.key for o in old):
            return []
        keep = [i for i in record.identities if i.channel is not channel]
        writes: list[Write] = [ReleaseIdentity(o.channel, o.key, record.customer_id) for o in old]
        if new:
            writes.append(ClaimIdentity(new.channel, new.key, record.customer_id))
            keep.append(new)
        record.identities = keep
        return writes

    def complete_contact_verification(
        self, customer_id: str, field: ContactField
    ) -> VerificationOutcome:
        """The seam for a verification service: the customer proved they hold the pending
        phone or email. It becomes theirs if no other profile holds it; otherwise the pending
        change is dropped and the managers get a merge suggestion (the customer has shown the
        number is theirs, so the other profile is likely them too, or holds a recycled number)."""

        def attempt() -> VerificationOutcome:
            record = self._profiles.load(customer_id)
            pending = record.pending.get(field)
            if pending is None:
                raise NotFound(f"no pending change of {field} for customer {customer_id}")
            cid = record.customer_id
            if pending.expires_at <= self._profiles.clock():
                del record.pending[field]
                self._profiles.save(record)
                return VerificationOutcome(customer_id=cid, field=field, outcome="expired")
            codec = self._profiles.codec()
            value = codec.open_pending(record, field)
            wanted = self._identity_of(field, value)
            owner = self._profiles.store.owners([(wanted.channel, wanted.key)]).get(
                (wanted.channel, wanted.key)
            )
            if owner is not None and owner != record.customer_id:
                link = LinkingIdentity(
                    channel=wanted.channel, external_id=wanted.display, customer_id=owner
                )
                suggestion = self._identity.suggest_merge(
                    [cid, owner],
                    MergeReason.VERIFIED_CONTACT,
                    requested_by=f"customer:{cid}",
                    identities=[link],
                )
                del record.pending[field]
                self._profiles.save(record)
                return VerificationOutcome(
                    customer_id=cid,
                    field=field,
                    outcome="conflict",
                    suggestion_id=suggestion.suggestion_id,
                )
            del record.pending[field]
            codec.set_pii(record, field, value)
            writes = self._switch_identity(record, field, wanted)
            record.version += 1
            try:
                self._profiles.save(record, *writes)
            except IdentityTaken:
                raise StaleProfile("the number was claimed meanwhile") from None
            return VerificationOutcome(customer_id=cid, field=field, outcome="applied")

        return self._profiles.retry(attempt)

    def change_consent(
        self,
        caller: Caller,
        customer_id: str,
        body: ConsentChange,
        decision_key: str | None = None,
    ) -> ConsentView:
        """Record one consent decision. With `decision_key` (a caller's retryable step, e.g. a
        privacy request's withdrawal) the ledger entry's key is that, and a decision already
        recorded under it answers the consent as it stands, writing nothing again."""
        caller.require(Permission.EDIT_CONSENT, customer_id)
        now = self._profiles.clock()
        decided_at = body.decided_at or now
        if decided_at > now + CLOCK_SKEW:
            raise InvalidInput(
                "decided_at lies in the future",
                [FieldProblem("decided_at", "in the future (beyond a few minutes' clock skew)")],
            )

        def attempt() -> ConsentView:
            record = self._profiles.load(customer_id)
            current = record.consent.get(body.purpose)
            if current is not None and current.decided_at > decided_at:
                raise Conflict(
                    f"a later decision on {body.purpose.value} is recorded "
                    f"({current.decided_at.isoformat()}); this one is older and was not applied"
                )
            state = ConsentState(granted=body.granted, decided_at=decided_at, source=body.source)
            record.consent[body.purpose] = state
            key = decision_key or self._profiles.ids()
            entry = consent_entry(record, body.purpose, state, caller.subject, key)
            try:
                # The entry is put only if its key is free, in the profile's transaction.
                self._profiles.save(record, AppendEntry(entry))
            except DuplicateEntry:
                if decision_key is None:
                    raise
                record = self._profiles.load(customer_id)  # applied by an earlier attempt
            consent = {ConsentPurpose(k): v for k, v in record.consent.items()}
            return ConsentView(customer_id=record.customer_id, consent=consent)

        return self._profiles.retry(attempt)

    def restrict_processing(self, caller: Caller, customer_id: str) -> None:
        """Restrict processing (a privacy request): campaigns send the customer no marketing
        from now on; the profile is kept as it is. Idempotent."""
        caller.require(Permission.EDIT_CONSENT, customer_id)

        def attempt() -> None:
            record = self._profiles.load(customer_id)
            if record.restricted:
                return
            record.restricted = True
            self._profiles.save(record)

        self._profiles.retry(attempt)

    def change_tags(self, caller: Caller, customer_id: str, body: TagChange) -> TagsView:
        caller.require(Permission.EDIT_TAGS, customer_id)

        def attempt() -> TagsView:
            record = self._profiles.load(customer_id)
            tags = {k: v for k, v in record.tags.items() if k not in body.remove}
            now = self._profiles.clock()
            for tag in body.add:
                if tag.name not in tags:
                    tags[tag.name] = TagState(kind=tag.kind, added_at=now, added_by=caller.subject)
            if len(tags) > MAX_TAGS:
                raise Conflict(f"a profile holds at most {MAX_TAGS} tags")
            if tags != record.tags:
                record.tags = tags
                self._profiles.save(record)
            return TagsView(customer_id=record.customer_id, tags=record.tags)

        return self._profiles.retry(attempt)
