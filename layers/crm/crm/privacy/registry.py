"""The personal-data registry as the privacy family's branch ships it: only its own stores.
The registry branch (R) replaces this module with every family's stores and keeps
`own_stores` in the list; the names below are the seam both branches share."""

from __future__ import annotations

from typing import Any

from crm.personal_data import DataSubject, PersonalDataStore
from crm.privacy.own_data import own_stores

# The composition root (crm.composition.Crm), typed loosely: the privacy family sits below the
# root in the layers contract and may not import it, even for type checking.
Crm = Any

__all__ = ["collect_subject", "own_stores", "personal_data_stores"]


def personal_data_stores(root: Crm) -> tuple[PersonalDataStore, ...]:
    return own_stores(root)


def collect_subject(root: Crm, customer_id: str) -> DataSubject:
    """Every identifier of the customer, from the profile: ids and keyed hashes only."""
    record = root.profile_service.load(customer_id)
    index = root.blind_index()
    pii_keys = tuple(i.key for i in record.identities if i.channel in ("phone", "email"))
    external = tuple(i.key for i in record.identities if i.channel not in ("phone", "email"))
    return DataSubject(
        customer_id=record.customer_id,
        pseudonym=index.pseudonym(record.customer_id),
        blind_indexes=pii_keys,
        external_ids=external,
        merged_ids=tuple(record.merged_from),
    )
