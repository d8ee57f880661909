"""A consent decision recorded on a profile: its state and its ledger entry. One decision comes
through the API (`ProfileEdits.change_consent`), a customer's past decisions with a historical
import (identity resolution's `import_customer`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from crm.profiles.record_models import ConsentPurpose, ConsentState
from crm.profiles.records import LedgerEntry, ProfileRecord

if TYPE_CHECKING:
    from crm.profiles.change_models import ConsentChange


def consent_entry(
    record: ProfileRecord, purpose: ConsentPurpose, state: ConsentState, by: str, key: str
) -> LedgerEntry:
    """The ledger's entry of a decision set on `record` (put in the profile's transaction)."""
    return LedgerEntry(
        key=f"consent:{key}",
        kind="CNS",
        customer_id=record.customer_id,
        at=state.decided_at,
        body={"purpose": purpose, "by": by, **state.model_dump(mode="json")},
    )


def apply_history(
    record: ProfileRecord,
    decisions: Sequence[ConsentChange],
    by: str,
    now: datetime,
    ids: Callable[[], str],
) -> list[LedgerEntry]:
    """A customer's past decisions onto the record, oldest first: each purpose takes its latest
    one (of decisions at the same time, the last listed), and each is recorded in the ledger.
    A decision no later than what the profile held before changes nothing (the profile's own
    is newer, or a retried import applied it already), so nothing is recorded twice. The
    entries of those applied."""
    entries = []
    held = {purpose: state.decided_at for purpose, state in record.consent.items()}
    for decision in sorted(decisions, key=lambda d: d.decided_at or now):  # stable: ties listed
        state = ConsentState(
            granted=decision.granted, decided_at=decision.decided_at or now,
            source=decision.source,
        )  # fmt: skip
        before = held.get(decision.purpose)
        if before is not None and before >= state.decided_at:
            continue
        record.consent[decision.purpose] = state
        entries.append(consent_entry(record, decision.purpose, state, by, ids()))
    return entries
