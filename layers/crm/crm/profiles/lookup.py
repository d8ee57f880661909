"""Finding customers for support without creating one: by phone, email, any channel's id or an
order id. Phone and email are normalised as an upsert does and looked up by blind index; an
order is found through its ledger entry. Merged profiles lead to the profile that absorbed them.
"""

from __future__ import annotations

from crm.audit import CUSTOMER_SEARCH
from crm.auth import Caller, Permission
from crm.errors import Conflict, NotFound
from crm.profiles.models import (
    Channel,
    CustomerMatch,
    CustomerMatches,
    FindCustomers,
    Identity,
    SearchCriterion,
)
from crm.profiles.records import ProfileRecord, order_entry_key
from crm.profiles.service import ProfileService
from crm.profiles.views import CustomerViews

ORDER_EVENTS = ("order_placed", "order_paid")


class CustomerLookup:
    def __init__(self, profiles: ProfileService, views: CustomerViews) -> None:
        self._profiles = profiles
        self._views = views

    def find_customers(self, caller: Caller, body: FindCustomers) -> CustomerMatches:
        caller.require(Permission.FIND_CUSTOMERS)
        owners = self._owners(body)
        live: dict[str, ProfileRecord] = {}
        matched: dict[str, list[SearchCriterion]] = {}
        for criterion, customer_id in owners:
            # An id may belong to a profile merged since: the match is its survivor. An id
            # that leads nowhere (a profile gone) simply does not match.
            record = self._follow(customer_id)
            if record is None:
                continue
            live.setdefault(record.customer_id, record)
            found = matched.setdefault(record.customer_id, [])
            if criterion not in found:
                found.append(criterion)
        codec = self._profiles.codec()
        return CustomerMatches(
            matches=[
                CustomerMatch(
                    customer_id=cid,
                    matched_by=matched[cid],
                    profile=self._views.view(caller, record, codec, why=CUSTOMER_SEARCH),
                )
                for cid, record in sorted(live.items(), key=lambda kv: kv[1].created_at)
            ]
        )

    def _owners(self, body: FindCustomers) -> list[tuple[SearchCriterion, str]]:
        """(criterion, customer id) for every criterion that matched something."""
        wanted: list[tuple[SearchCriterion, Identity]] = []
        if body.phone:
            wanted.append(("phone", Identity(channel=Channel.PHONE, external_id=body.phone)))
        if body.email:
            wanted.append(("email", Identity(channel=Channel.EMAIL, external_id=body.email)))
        if body.identity:
            wanted.append(("identity", body.identity))
        store = self._profiles.store
        found: list[tuple[SearchCriterion, str]] = []
        if wanted:
            keys = [(criterion, self._profiles.stored_identity(i)) for criterion, i in wanted]
            owners = store.owners([(s.channel, s.key) for _, s in keys])
            found += [
                (criterion, owners[(s.channel, s.key)])
                for criterion, s in keys
                if (s.channel, s.key) in owners
            ]
        if body.order_id:
            entries = [order_entry_key(body.order_id, kind) for kind in ORDER_EVENTS]
            found += [("order_id", cid) for cid in store.entry_owners(entries).values()]
        return found

    def _follow(self, customer_id: str) -> ProfileRecord | None:
        try:
            return self._profiles.load(customer_id)
        except (NotFound, Conflict):  # gone, or lost in a merge chain too long to follow
            return None
