"""The one registry of personal data: every store of the suite that holds customer data, in
the order an erasure runs them, and the collector of a customer's identifiers.

Order matters for erasure and for a retried one: the timers go first (a pending timer must
not fire into a half-erased customer), the profiles last (its profile item lists identities a
retried run still needs, and deleting it destroys the data key: crypto-shredding). Every store
works from the frozen `DataSubject` alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crm.analytics.parquet_rows import ParquetRows
from crm.campaigns import CampaignsPersonalData
from crm.lake_personal_data import JsonLines, LakePersonalData, ObjectFormat
from crm.personal_data import DataSubject, NoPersonalData, PersonalDataStore
from crm.privacy.own_data import own_stores
from crm.profiles import ProfilesPersonalData, StagedImportsPersonalData
from crm.segments import SegmentsPersonalData
from crm.tickets import TicketsPersonalData
from crm.timers import TimersPersonalData

PII_CHANNELS = frozenset({"phone", "email"})
# Formats of the lake's objects; the analytics family appends its Parquet format here.
LAKE_FORMATS: tuple[ObjectFormat, ...] = (JsonLines(), ParquetRows())


def personal_data_stores(root: Any) -> tuple[PersonalDataStore, ...]:
    """Every store of customer data, built on the composition root's settings (`root` is a
    `crm.composition.Crm`; typed loosely because the root sits above this family)."""
    settings = root.settings
    service = root.profile_service

    def scores(customer_id: str) -> Mapping[str, Any] | None:
        record = service.store.get(customer_id)
        if record is None or record.scores is None:
            return None
        found: Mapping[str, Any] = record.scores.model_dump(mode="json")
        return found

    def segments(customer_id: str) -> list[str]:
        record = service.store.get(customer_id)
        return [] if record is None else list(record.segments)

    stores: tuple[PersonalDataStore, ...] = (
        TimersPersonalData(settings.timers.timers_table),
        CampaignsPersonalData(settings.campaigns.campaigns_table),
        TicketsPersonalData(settings.tickets.tickets_table, service.opening_cipher),
        SegmentsPersonalData(settings.segments.segments_table, scores, segments),
        LakePersonalData(
            settings.platform.lake_bucket,
            LAKE_FORMATS,
            lambda cid: root.blind_index().pseudonym(cid),
        ),
        *own_stores(root),
        NoPersonalData(
            "analytics_results",
            ("AnalyticsResultsBucket",),
            "Athena's query results are the dashboard's aggregates (counts and sums by day, "
            "channel, category, campaign), never a customer's id or pseudonym; they expire "
            "after a day",
        ),
        # Before the profiles: a retried import must not bring an erased customer back.
        StagedImportsPersonalData(
            settings.profiles.imports_bucket,
            lambda c: {
                i.key for i in root.profile_identity.wanted_identities(c.identities, c.attributes)
            },
        ),
        ProfilesPersonalData(settings.profiles.customers_table, service.keys),
    )
    return stores


def collect_subject(root: Any, customer_id: str) -> DataSubject:
    """The identifiers of a live customer (an id merged into another names the survivor):
    its identities' keys (blind indexes of phones and emails, channel ids of the rest) and
    every profile merged into it, however deep. Raises NotFound for an unknown id."""
    service = root.profile_service
    record = service.load(customer_id)
    blind: set[str] = set()
    external: set[str] = set()
    merged: list[str] = []
    pending = list(record.merged_from)
    for identity in record.identities:
        (blind if str(identity.channel) in PII_CHANNELS else external).add(identity.key)
    while pending:
        merged_id = pending.pop()
        if merged_id in merged or merged_id == record.customer_id:
            continue
        merged.append(merged_id)
        tombstone = service.store.get(merged_id)
        if tombstone is not None:
            pending += tombstone.merged_from
    return DataSubject(
        customer_id=record.customer_id,
        pseudonym=root.blind_index().pseudonym(record.customer_id),
        blind_indexes=tuple(sorted(blind)),
        external_ids=tuple(sorted(external)),
        merged_ids=tuple(merged),
    )


__all__ = ["LAKE_FORMATS", "collect_subject", "personal_data_stores"]
