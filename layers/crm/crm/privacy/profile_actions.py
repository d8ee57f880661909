"""The profile step of consent withdrawal, rectification and restriction, through the
profiles family's own use cases (the same checks, ledger and events as a staff edit), acting
as the privacy system."""

from __future__ import annotations

import json
from collections.abc import Sequence

from crm.auth import Caller, Role
from crm.errors import NotFound
from crm.profiles.change_models import ConsentChange, EditProfile
from crm.profiles.family import Profiles
from crm.profiles.models import ConsentPurpose, ProfileAttributes

SYSTEM = Caller(subject="privacy", roles=frozenset({Role.ADMIN}), system=True)
CHANGES_FIELD = "privacy_changes"  # what the sealed changes are bound to (the cipher's AAD)
MARKETING = tuple(p for p in ConsentPurpose if p.value.startswith("marketing_"))


class ProfilesActions:
    def __init__(self, profiles: Profiles) -> None:
        self._profiles = profiles

    def seal_changes(self, customer_id: str, changes: dict[str, object]) -> str:
        _, cipher = self._profiles.service.sealing_cipher(customer_id)
        return cipher.seal(CHANGES_FIELD, json.dumps(changes, sort_keys=True))

    def withdraw_consent(
        self, customer_id: str, purposes: Sequence[str], source: str, request_id: str
    ) -> list[str]:
        wanted = [ConsentPurpose(p) for p in purposes] or list(MARKETING)
        for purpose in wanted:
            change = ConsentChange(purpose=purpose, granted=False, source=source)
            # One ledger entry per request and purpose, however often the step is retried.
            key = f"privacy:{request_id}:{purpose.value}"
            self._profiles.edits.change_consent(SYSTEM, customer_id, change, decision_key=key)
        return [p.value for p in wanted]

    def rectify(self, customer_id: str, sealed_changes: str) -> list[str]:
        cipher = self._profiles.service.opening_cipher(customer_id)
        if cipher is None:
            raise NotFound("the customer's profile or data key is gone")
        changes = json.loads(cipher.open(CHANGES_FIELD, sealed_changes))
        record = self._profiles.service.load(customer_id)
        edit = EditProfile(
            version=record.version, attributes=ProfileAttributes.model_validate(changes)
        )
        self._profiles.edits.edit_profile(SYSTEM, customer_id, edit)
        return sorted(changes)

    def restrict(self, customer_id: str) -> None:
        self._profiles.edits.restrict_processing(SYSTEM, customer_id)
