"""Moving PII between the API's attributes and a profile record: sealing, masking, opening."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from crm.keys import DataKeys
from crm.pii import FieldCipher, mask_email, mask_name, mask_phone, mask_text
from crm.profiles.record_models import ContactField, ProfileAttributes
from crm.profiles.records import PendingContact, ProfileRecord

if TYPE_CHECKING:
    from crm.profiles.models import AttributesView

# Field name in the record -> how it is masked for roles that may not read PII.
PII_FIELDS = {
    "name": mask_name,
    "phone": mask_phone,
    "email": mask_email,
    "address_line": mask_text,
}
_PLAIN_FIELDS = ("gender", "birthday", "city", "locale", "preferred_store_id", "time_zone")
NOTE_FIELD = "note_sealed"  # in a timeline entry's body


def pending_field(field: ContactField) -> str:
    """Associated data of a pending contact: it cannot pass for the verified attribute."""
    return f"pending_{field}"


def note_field(event_id: str) -> str:
    """Associated data of a sealed note: bound to its event, not movable to another."""
    return f"note:{event_id}"


_REGION_FIELDS = ("province", "city", "district", "postal_code")


class PiiCodec:
    """Holds the data keys it unwrapped during one request or one folded batch, so each costs
    one KMS call however many fields or events use it."""

    def __init__(self, keys: DataKeys) -> None:
        self._keys = keys
        self._ciphers: dict[str, tuple[bytes, FieldCipher]] = {}

    def cipher(self, record: ProfileRecord) -> FieldCipher:
        # Kept by customer and by wrapped key: a record read again after a failed commit may
        # hold another key (one created concurrently) or none (the key this codec created was
        # never stored), and must get a cipher for the key it will be stored with.
        cached = self._ciphers.get(record.customer_id)
        if cached is not None and cached[0] == record.wrapped_key:
            return cached[1]
        if record.wrapped_key is None:
            plaintext, record.wrapped_key = self._keys.create(record.customer_id)
        else:
            plaintext = self._keys.unwrap(record.customer_id, record.wrapped_key)
        cipher = FieldCipher(record.customer_id, plaintext)
        self._ciphers[record.customer_id] = (record.wrapped_key, cipher)
        return cipher

    def set_pii(self, record: ProfileRecord, field: str, value: str | None) -> None:
        if value is None:
            record.sealed.pop(field, None)
            record.masked.pop(field, None)
            return
        record.sealed[field] = self.cipher(record).seal(field, value)
        record.masked[field] = PII_FIELDS[field](value)

    def set_pending(
        self,
        record: ProfileRecord,
        field: ContactField,
        value: str,
        requested_at: datetime,
        expires_at: datetime,
    ) -> None:
        record.pending[field] = PendingContact(
            sealed=self.cipher(record).seal(pending_field(field), value),
            masked=PII_FIELDS[field](value),
            requested_at=requested_at,
            expires_at=expires_at,
        )

    def open_pending(self, record: ProfileRecord, field: ContactField) -> str:
        return self.cipher(record).open(pending_field(field), record.pending[field].sealed)

    def open_all(self, record: ProfileRecord) -> dict[str, str]:
        if not record.sealed:
            return {}
        cipher = self.cipher(record)
        return {field: cipher.open(field, sealed) for field, sealed in record.sealed.items()}

    def apply(self, record: ProfileRecord, attrs: ProfileAttributes, only_missing: bool) -> None:
        """Write the attributes that `attrs` sets (null clears) into the record."""
        for name in attrs.model_fields_set:
            value = getattr(attrs, name)
            if name in ("name", "phone", "email"):
                if not (only_missing and name in record.sealed):
                    self.set_pii(record, name, value)
            elif name == "address":
                if not (only_missing and "address" in record.attributes):
                    self._apply_address(record, attrs)
            elif not (only_missing and name in record.attributes):
                if value is None:
                    record.attributes.pop(name, None)
                else:
                    record.attributes[name] = value.isoformat() if name == "birthday" else value

    def _apply_address(self, record: ProfileRecord, attrs: ProfileAttributes) -> None:
        address = attrs.address
        if address is None:
            record.attributes.pop("address", None)
            self.set_pii(record, "address_line", None)
            return
        record.attributes["address"] = {
            k: getattr(address, k) for k in _REGION_FIELDS if getattr(address, k) is not None
        }
        self.set_pii(record, "address_line", address.line)

    def copy_missing(self, source: ProfileRecord, target: ProfileRecord) -> None:
        """Fill target's unset attributes from source, re-sealing PII under target's key."""
        for name, value in source.attributes.items():
            target.attributes.setdefault(name, value)
        missing = [f for f in source.sealed if f not in target.sealed]
        if missing:
            opened = self.open_all(source)
            for field in missing:
                self.set_pii(target, field, opened[field])

    def open_note(self, record: ProfileRecord, body: dict[str, Any], full: bool) -> str | None:
        """A timeline note for the view: opened for PII roles, masked for the others. Notes
        recorded under a profile since merged into this one stay masked (their key is that
        profile's)."""
        sealed = body.get(NOTE_FIELD)
        if sealed is None:
            return None
        if not full or body.get("customer_id", record.customer_id) != record.customer_id:
            return mask_text(sealed)
        return self.cipher(record).open(note_field(str(body["event_id"])), sealed)

    def view(self, record: ProfileRecord, full: bool) -> AttributesView:
        # The API's view models: the event folder seals and opens, and never builds a view.
        from crm.profiles.models import AddressView, AttributesView

        pii = self.open_all(record) if full else dict(record.masked)
        plain: dict[str, Any] = {k: record.attributes.get(k) for k in _PLAIN_FIELDS}
        region = record.attributes.get("address")
        address = None
        if region is not None or "address_line" in pii:
            address = AddressView(**(region or {}), line=pii.get("address_line"))
        return AttributesView(
            name=pii.get("name"),
            phone=pii.get("phone"),
            email=pii.get("email"),
            address=address,
            **plain,
        )
