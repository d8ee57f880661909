"""Loyalty points: earn and redeem, never below zero, applied once per transaction id."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crm.auth import Caller, Permission
from crm.errors import Conflict, FieldProblem
from crm.events import CustomerProfileUpdated
from crm.profiles.change_models import PointsChange, PointsEntry, PointsView
from crm.profiles.records import LedgerEntry, ProfileRecord
from crm.profiles.service import ProfileService
from crm.profiles.store import AppendEntry, DuplicateEntry

if TYPE_CHECKING:
    from crm.bus import Bus

# The event type a points change announces on the bus (journeys trigger on it).
POINTS_CHANGED = "points_changed"


class LoyaltyPoints:
    def __init__(self, profiles: ProfileService, bus: Bus | None = None) -> None:
        self._profiles = profiles
        self._bus = bus

    def change_points(self, caller: Caller, customer_id: str, body: PointsChange) -> PointsView:
        caller.require(Permission.ADJUST_POINTS, customer_id)

        def attempt() -> PointsView:
            record = self._profiles.load(customer_id)
            delta = body.points if body.kind == "earn" else -body.points
            if record.points_balance + delta < 0:
                raise Conflict(
                    f"insufficient points: balance {record.points_balance}, redeeming {body.points}"
                )
            record.points_balance += delta
            now = self._profiles.clock()
            entry = PointsEntry(
                txn_id=body.txn_id,
                kind=body.kind,
                points=body.points,
                balance_after=record.points_balance,
                reason=body.reason,
                channel=body.channel,
                store_id=body.store_id,
                at=now,
            )
            ledger = LedgerEntry(
                key=f"points:{body.txn_id}",
                kind="PTS",
                customer_id=record.customer_id,
                at=now,
                body=entry.model_dump(mode="json"),
            )
            try:
                self._profiles.save(record, AppendEntry(ledger))
            except DuplicateEntry as duplicate:
                if duplicate.existing.get("customer_id") not in self._ids_of(record):
                    raise Conflict(f"txn_id {body.txn_id} was used for another customer") from None
                self._check_same_change(body, duplicate.existing.get("body") or {})
            else:
                self._announce(record, now)
            return self.points_view(caller, customer_id)

        return self._profiles.retry(attempt)

    def _announce(self, record: ProfileRecord, now: Any) -> None:
        """Say on the bus that the points changed (ids only), once per applied transaction: a
        retried txn_id applies nothing and announces nothing."""
        if self._bus is None:
            return
        self._bus.publish(
            [
                CustomerProfileUpdated(
                    customer_id=record.customer_id, rev=record.rev, changed=["points"],
                    event_types=[POINTS_CHANGED], occurred_at=now,
                )
            ]
        )  # fmt: skip

    @staticmethod
    def _check_same_change(body: PointsChange, first: dict[str, Any]) -> None:
        """A retried transaction gets the first result; a txn_id reused for a different
        change is a client's mistake that must not pass for success."""
        kind, points = first.get("kind"), first.get("points")
        if (kind, points) != (body.kind, body.points):
            raise Conflict(
                f"txn_id {body.txn_id} was already used to {kind} {points} points; "
                f"a different change needs a new txn_id",
                [FieldProblem("txn_id", "already used for a different change")],
            )

    @staticmethod
    def _ids_of(record: ProfileRecord) -> set[str]:
        return {record.customer_id, *record.merged_from}

    def points_view(
        self, caller: Caller, customer_id: str, limit: int = 20, page_token: str | None = None
    ) -> PointsView:
        caller.require(Permission.READ_PROFILE, customer_id)
        record = self._profiles.load(customer_id)
        entries, next_token = self._profiles.store.entries(
            "PTS", record.customer_id, limit, page_token
        )
        return PointsView(
            customer_id=record.customer_id,
            balance=record.points_balance,
            entries=[PointsEntry.model_validate(e.body) for e in entries],
            next_token=next_token,
        )
