"""Key material: per-customer data keys wrapped by KMS, and the blind-index HMAC key."""

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
