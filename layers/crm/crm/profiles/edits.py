"""Changing a profile: attribute edits, consent decisions, tags."""

from __future__ import annotations

from datetime import timedelta

from crm.auth import Caller, Permission
from crm.errors import Conflict, InvalidInput
from crm.profiles.models import (
    MAX_TAGS,
    Channel,
    ConsentChange,
    ConsentPurpose,
    ConsentState,
    ConsentView,
    Customer360,
    CustomerSelfView,
    EditProfile,
    Identity,
    ProfileAttributes,
    TagChange,
    TagState,
    TagsView,
)
from crm.profiles.pii_codec import PiiCodec
from crm.profiles.records import LedgerEntry, ProfileRecord
from crm.profiles.service import ProfileService
from crm.profiles.store import AppendEntry, ClaimIdentity, IdentityTaken, ReleaseIdentity, Write
from crm.profiles.views import CustomerViews

CLOCK_SKEW = timedelta(minutes=5)


class ProfileEdits:
    def __init__(self, profiles: ProfileService, views: CustomerViews) -> None:
        self._profiles = profiles
        self._views = views

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
            writes = self._edit_writes(record, body.attributes, codec)
            record.version += 1
            try:
                self._profiles.save(record, *writes)
            except IdentityTaken as taken:
                raise Conflict(
                    f"this {taken.channel} belongs to another customer; merge the two profiles"
                ) from None
            return self._views.for_caller(caller, record, codec, customer_id)

        return self._profiles.retry(attempt)

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
                self._profiles.stored_identity(Identity(channel=channel, external_id=value))
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

    def change_consent(self, caller: Caller, customer_id: str, body: ConsentChange) -> ConsentView:
        caller.require(Permission.EDIT_CONSENT, customer_id)
        now = self._profiles.clock()
        decided_at = body.decided_at or now
        if decided_at > now + CLOCK_SKEW:
            raise InvalidInput("decided_at lies in the future")

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
            entry = LedgerEntry(
                key=f"consent:{self._profiles.ids()}",
                kind="CNS",
                customer_id=record.customer_id,
                at=decided_at,
                body={
                    "purpose": body.purpose,
                    "by": caller.subject,
                    **state.model_dump(mode="json"),
                },
            )
            self._profiles.save(record, AppendEntry(entry))
            consent = {ConsentPurpose(k): v for k, v in record.consent.items()}
            return ConsentView(customer_id=record.customer_id, consent=consent)

        return self._profiles.retry(attempt)

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
