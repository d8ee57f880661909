"""Segments family: RFM, churn probability, lifetime value, tiers, rule segments,
recommendations.

This module is the family's public interface. It never loads numpy or scipy: the numerical
models (`crm.segments.recompute`, `scoring`, `clv`) are for the segment functions only, which
carry the analytics layer.
Each name loads its module when first read (crm/exports.py).
"""

from typing import TYPE_CHECKING

from crm.exports import lazy

if TYPE_CHECKING:
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
__getattr__ = lazy(
    __name__,
    {
        "RuleMembership": "crm.segments.membership",
        "Condition": "crm.segments.models",
        "Rule": "crm.segments.models",
        "SegmentsPersonalData": "crm.segments.personal_data",
        "matches": "crm.segments.rules",
        "SegmentCatalog": "crm.segments.service",
    },
    globals(),
)
