"""Segments family: RFM, churn probability, lifetime value, tiers, rule segments,
recommendations.

This module is the family's public interface. It never loads numpy or scipy: the numerical
models (`crm.segments.recompute`, `scoring`, `clv`) are for the segment functions only, which
carry the analytics layer.
"""

from crm.segments.membership import RuleMembership
from crm.segments.models import Condition, Rule
from crm.segments.personal_data import SegmentsPersonalData
from crm.segments.rules import matches
from crm.segments.service import SegmentCatalog

__all__ = [
    "Condition",
    "Rule",
    "RuleMembership",
    "SegmentCatalog",
    "SegmentsPersonalData",
    "matches",
]
