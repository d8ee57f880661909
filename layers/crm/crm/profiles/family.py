"""The profiles family's use cases, as the composition root builds them together for the API
(the event and import intakes are built apart, `Crm.event_intake` and `Crm.import_intake`, as
the event folder's folding is, `Crm.event_folding`).

Identity resolution and the views, which every profile request uses, are built with the
family; edits, lookup, merge suggestions and points are built, and their modules and models
loaded, when a request first uses them: a container whose first request creates or reads a
customer loads none of them."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crm.bus import Bus
    from crm.profiles.edits import ProfileEdits
    from crm.profiles.identity import IdentityResolution
    from crm.profiles.lookup import CustomerLookup
    from crm.profiles.merge_suggestions import MergeSuggestions
    from crm.profiles.points import LoyaltyPoints
    from crm.profiles.service import ProfileService
    from crm.profiles.views import CustomerViews


class Profiles:
    def __init__(
        self,
        service: ProfileService,
        identity: IdentityResolution,
        views: CustomerViews,
        bus: Bus,
    ) -> None:
        self.service = service
        self.identity = identity
        self.views = views
        self._bus = bus

    @cached_property
    def edits(self) -> ProfileEdits:
        from crm.profiles.edits import ProfileEdits

        return ProfileEdits(self.service, self.views, self.identity)

    @cached_property
    def lookup(self) -> CustomerLookup:
        from crm.profiles.lookup import CustomerLookup

        return CustomerLookup(self.service, self.views)

    @cached_property
    def merge_suggestions(self) -> MergeSuggestions:
        from crm.profiles.merge_suggestions import MergeSuggestions

        return MergeSuggestions(self.service, self.identity)

    @cached_property
    def points(self) -> LoyaltyPoints:
        from crm.profiles.points import LoyaltyPoints

        return LoyaltyPoints(self.service, self._bus)
