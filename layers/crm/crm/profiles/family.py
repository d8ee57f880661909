"""The profiles family's use cases, as the composition root builds them together for the API
(the event and import intakes are built apart, `Crm.event_intake` and `Crm.import_intake`, as
the event folder's folding is, `Crm.event_folding`)."""

from __future__ import annotations

from dataclasses import dataclass

from crm.profiles.edits import ProfileEdits
from crm.profiles.identity import IdentityResolution
from crm.profiles.lookup import CustomerLookup
from crm.profiles.merge_suggestions import MergeSuggestions
from crm.profiles.points import LoyaltyPoints
from crm.profiles.service import ProfileService
from crm.profiles.views import CustomerViews


@dataclass(frozen=True)
class Profiles:
    service: ProfileService
    identity: IdentityResolution
    views: CustomerViews
    edits: ProfileEdits
    lookup: CustomerLookup
    merge_suggestions: MergeSuggestions
    points: LoyaltyPoints
