"""The 360° view of a customer, masked by the caller's role."""

from __future__ import annotations

from crm.auth import Caller, Permission
from crm.profiles.models import ConsentPurpose, Customer360, IdentityView, TimelineEntry
from crm.profiles.pii_codec import PiiCodec
from crm.profiles.records import LedgerEntry, ProfileRecord
from crm.profiles.service import ProfileService

TIMELINE_LENGTH = 20


class CustomerViews:
    def __init__(self, profiles: ProfileService) -> None:
        self._profiles = profiles

    def read_customer_360(self, caller: Caller, customer_id: str) -> Customer360:
        caller.require(Permission.READ_PROFILE, customer_id)
        record = self._profiles.load(customer_id)
        return self.view(caller, record, self._profiles.codec(), customer_id)

    def view(
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
            page, _ = self._profiles.store.entries("EVT", customer_id, TIMELINE_LENGTH)
            entries.extend(page)
        entries.sort(key=lambda e: e.at, reverse=True)
        shown = []
        for e in entries[:TIMELINE_LENGTH]:
            note = codec.open_note(record, {**e.body, "customer_id": e.customer_id}, full)
            shown.append(TimelineEntry.model_validate({**e.body, "note": note}))
        return shown
