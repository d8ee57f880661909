"""Profiles family: identity resolution, profile edits, consent, tags, points, events folded
into a 360° view.

This module is the family's public interface: other families import from here and nowhere
else in the package (an import contract checks it).
"""

from crm.profiles.customer_events import EVENT_TYPES, Money
from crm.profiles.models import Aggregates, CustomerScores
from crm.profiles.personal_data import ProfilesPersonalData
from crm.profiles.records import ProfileRecord, ScoresWrite, ScoringProfile
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
    "Aggregates",
    "CustomerScores",
    "Loaded",
    "Money",
    "NoRuleSegments",
    "ProfileRecord",
    "ProfileService",
    "ProfilesPersonalData",
    "RuleSegments",
    "ScoresWrite",
    "ScoringProfile",
    "SegmentShift",
    "StaleProfile",
]
