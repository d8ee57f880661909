"""Profiles family: identity resolution, profile edits, consent, tags, points, events folded
into a 360° view.

This module is the family's public interface: other families import from here and nowhere
else in the package (an import contract checks it).
Each name loads its module when first read (crm/exports.py).
"""

from typing import TYPE_CHECKING

from crm.exports import lazy

if TYPE_CHECKING:
    from crm.profiles.customer_events import EVENT_TYPES, Money
    from crm.profiles.import_personal_data import StagedImportsPersonalData
    from crm.profiles.personal_data import ProfilesPersonalData
    from crm.profiles.record_models import Aggregates, CustomerScores
    from crm.profiles.records import (
        INDEX_MISSING,
        MEMBER_SHARDS,
        OrderPayment,
        ProfileRecord,
        ScoresWrite,
        ScoringProfile,
        member_index,
        member_shard,
    )
    from crm.profiles.service import (
        Loaded,
        NoRuleSegments,
        ProfileService,
        RuleSegments,
        SegmentShift,
    )
    from crm.profiles.store import StaleProfile

__all__ = [
    "EVENT_TYPES",
    "INDEX_MISSING",
    "MEMBER_SHARDS",
    "Aggregates",
    "CustomerScores",
    "Loaded",
    "Money",
    "NoRuleSegments",
    "OrderPayment",
    "ProfileRecord",
    "ProfileService",
    "ProfilesPersonalData",
    "RuleSegments",
    "ScoresWrite",
    "ScoringProfile",
    "SegmentShift",
    "StagedImportsPersonalData",
    "StaleProfile",
    "member_index",
    "member_shard",
]
__getattr__ = lazy(
    __name__,
    {
        "EVENT_TYPES": "crm.profiles.customer_events",
        "Money": "crm.profiles.customer_events",
        "Aggregates": "crm.profiles.record_models",
        "CustomerScores": "crm.profiles.record_models",
        "ProfilesPersonalData": "crm.profiles.personal_data",
        "INDEX_MISSING": "crm.profiles.records",
        "MEMBER_SHARDS": "crm.profiles.records",
        "member_index": "crm.profiles.records",
        "member_shard": "crm.profiles.records",
        "OrderPayment": "crm.profiles.records",
        "ProfileRecord": "crm.profiles.records",
        "ScoresWrite": "crm.profiles.records",
        "ScoringProfile": "crm.profiles.records",
        "Loaded": "crm.profiles.service",
        "NoRuleSegments": "crm.profiles.service",
        "ProfileService": "crm.profiles.service",
        "RuleSegments": "crm.profiles.service",
        "SegmentShift": "crm.profiles.service",
        "StaleProfile": "crm.profiles.store",
        "StagedImportsPersonalData": "crm.profiles.import_personal_data",
    },
    globals(),
)
