"""The views of a customer: staff read the 360° view, masked by role; a customer reads their
own projection, without the internal marketing data."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from crm.audit import PROFILE_VIEW, NoPiiReads, PiiReads
from crm.auth import Caller, Permission
from crm.profiles.pii_codec import PiiCodec
from crm.profiles.record_models import ConsentPurpose
from crm.profiles.records import LedgerEntry, ProfileRecord
from crm.profiles.service import ProfileService

# The event folder's identity resolution holds these views (an upsert answers with one) but
# never builds one: the API's view models are loaded by the first view built, not with the
# module (docs/architecture.md, "Cold starts").
if TYPE_CHECKING:
    from crm.profiles.models import (
        Customer360,
        CustomerSelfView,
        IdentityView,
        PendingContactView,
        TimelineEntry,
    )

TIMELINE_LENGTH = 20


class CustomerViews:
    def __init__(self, profiles: ProfileService, pii_reads: PiiReads | None = None) -> None:
        self._profiles = profiles
        # Staff reads of unmasked PII go to the privacy audit trail (crm.audit).
        self._pii_reads = pii_reads or NoPiiReads()

    def read_customer_360(self, caller: Caller, customer_id: str) -> Customer360 | CustomerSelfView:
        caller.require(Permission.READ_PROFILE, customer_id)
        record = self._profiles.load(customer_id)
        return self.for_caller(caller, record, self._profiles.codec(), customer_id)

    def for_caller(
        self,
        caller: Caller,
        record: ProfileRecord,
        codec: PiiCodec,
        asked_as: str | None = None,
        new: bool = False,
    ) -> Customer360 | CustomerSelfView:
        """The staff view for staff, the customer's own projection for a customer."""
        if caller.is_staff:
            return self.view(caller, record, codec, asked_as, new)
        return self.self_view(record, codec, new)

    def view(
        self,
        caller: Caller,
        record: ProfileRecord,
        codec: PiiCodec,
        asked_as: str | None = None,
        new: bool = False,
        why: str = PROFILE_VIEW,
    ) -> Customer360:
        full = caller.can(Permission.READ_PII, asked_as or record.customer_id)
        if full and record.sealed and not new and not caller.system:
            # Every staff view of a profile unmasked (a read, a search's match, an edit's
            # answer) is recorded: ids, field names, why. A profile staff just created shows
            # them only what they sent.
            self._pii_reads.unmasked_read(
                caller.subject, record.customer_id, sorted(record.sealed), why
            )
        # A new profile has no history yet.
        timeline = [] if new else self._timeline(record, codec, full)
        from crm.profiles.models import Customer360

        return Customer360(
            customer_id=record.customer_id,
            version=record.version,
            residency=record.residency or self._profiles.region,
            created_at=record.created_at,
            updated_at=record.updated_at,
            pii="full" if full else "masked",
            attributes=codec.view(record, full),
            identities=self._identities(record),
            consent={ConsentPurpose(k): v for k, v in record.consent.items()},
            tags=record.tags,
            points_balance=record.points_balance,
            orders=record.aggregates.orders,
            behaviour=record.aggregates.behaviour,
            timeline=timeline,
            merged_from=record.merged_from,
            scores=record.scores,
            segments=record.segments,
            pending_verification=self._pending(record, self._profiles.clock()),
        )

    def self_view(
        self, record: ProfileRecord, codec: PiiCodec, new: bool = False
    ) -> CustomerSelfView:
        """The customer's own data in full; nothing staff or the nightly run made of it."""
        from crm.profiles.models import CustomerSelfView

        return CustomerSelfView(
            customer_id=record.customer_id,
            version=record.version,
            created_at=record.created_at,
            updated_at=record.updated_at,
            attributes=codec.view(record, full=True),
            identities=self._identities(record),
            consent={ConsentPurpose(k): v for k, v in record.consent.items()},
            points_balance=record.points_balance,
            orders=record.aggregates.orders,
            timeline=[] if new else self._timeline(record, codec, full=True),
            pending_verification=self._pending(record, self._profiles.clock()),
        )

    @staticmethod
    def _identities(record: ProfileRecord) -> list[IdentityView]:
        from crm.profiles.models import IdentityView

        return [IdentityView(channel=i.channel, external_id=i.display) for i in record.identities]

    @staticmethod
    def _pending(record: ProfileRecord, now: datetime) -> list[PendingContactView]:
        from crm.profiles.models import PendingContactView

        return [
            PendingContactView(field=field, value=p.masked, expires_at=p.expires_at)
            for field, p in sorted(record.pending.items())
            if p.expires_at > now
        ]

    def _timeline(self, record: ProfileRecord, codec: PiiCodec, full: bool) -> list[TimelineEntry]:
        from crm.profiles.models import TimelineEntry

        entries: list[LedgerEntry] = []
        for customer_id in [record.customer_id, *record.merged_from]:
            page, _ = self._profiles.store.entries("EVT", customer_id, TIMELINE_LENGTH)
            entries.extend(page)
        entries.sort(key=lambda e: e.at, reverse=True)
        shown = []
        for e in entries[:TIMELINE_LENGTH]:
            note = codec.open_note(record, {**e.body, "customer_id": e.customer_id}, full)
            shown.append(TimelineEntry.model_validate({**e.body, "note": note}))
        return shown
