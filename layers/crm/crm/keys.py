"""Key material: per-customer data keys wrapped by KMS, transit keys for queued free text, and
the blind-index HMAC key."""

from __future__ import annotations

from crm import aws
from crm.pii import BlindIndex


class DataKeys:
    """KMS-wrapped AES-256 data keys, one per customer, bound to it by encryption context."""

    def __init__(self, key_id: str) -> None:
        self._key_id = key_id

    def create(self, customer_id: str) -> tuple[bytes, bytes]:
        """Returns (plaintext key, wrapped key). Only the wrapped key is ever stored."""
        out = aws.kms().generate_data_key(
            KeyId=self._key_id, KeySpec="AES_256", EncryptionContext={"customer_id": customer_id}
        )
        return out["Plaintext"], out["CiphertextBlob"]

    def unwrap(self, customer_id: str, wrapped: bytes) -> bytes:
        out = aws.kms().decrypt(
            KeyId=self._key_id,
            CiphertextBlob=wrapped,
            EncryptionContext={"customer_id": customer_id},
        )
        return out["Plaintext"]


class UnreadableKey(Exception):
    """KMS will never unwrap this key: it is corrupt, or wrapped under another key or context."""


# KMS's answers that retrying cannot change (throttling and access errors can change).
_NEVER_UNWRAPS = frozenset({"InvalidCiphertextException", "IncorrectKeyException"})


class TransitKeys:
    """KMS-wrapped AES-256 data keys, one per batch of events queued together, bound to that
    batch and to their one purpose by encryption context (which CloudTrail records with every
    use, so an unwrap names the batch it opened)."""

    PURPOSE = "profile-events-transit"

    def __init__(self, key_id: str) -> None:
        self._key_id = key_id

    def _context(self, batch_id: str) -> dict[str, str]:
        return {"purpose": self.PURPOSE, "batch_id": batch_id}

    def create(self, batch_id: str) -> tuple[bytes, bytes]:
        """Returns (plaintext key, wrapped key); only the wrapped key travels."""
        out = aws.kms().generate_data_key(
            KeyId=self._key_id, KeySpec="AES_256", EncryptionContext=self._context(batch_id)
        )
        return out["Plaintext"], out["CiphertextBlob"]

    def unwrap(self, batch_id: str, wrapped: bytes) -> bytes:
        try:
            out = aws.kms().decrypt(
                KeyId=self._key_id,
                CiphertextBlob=wrapped,
                EncryptionContext=self._context(batch_id),
            )
        except Exception as exc:
            code = aws.failed_call_code(exc)
            if code in _NEVER_UNWRAPS:
                raise UnreadableKey(code) from None
            raise
        return out["Plaintext"]


class BlindIndexKey:
    """The blind index, its secret fetched on first use and kept: the key never changes
    without a re-index of every identity. Calling it gives the index."""

    def __init__(self, secret_arn: str) -> None:
        self._secret_arn = secret_arn
        self._index: BlindIndex | None = None

    def __call__(self) -> BlindIndex:
        if self._index is None:
            secret = aws.secretsmanager().get_secret_value(SecretId=self._secret_arn)
            self._index = BlindIndex(secret["SecretString"].encode())
        return self._index
