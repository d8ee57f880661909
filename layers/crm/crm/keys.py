"""Key material: per-customer data keys wrapped by KMS, and the blind-index HMAC key."""

from __future__ import annotations

from functools import cache

from crm import aws
from crm.config import settings
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


@cache
def blind_index() -> BlindIndex:
    """Fetched once per process: the key never changes without a re-index of every identity."""
    secret = aws.secretsmanager().get_secret_value(SecretId=settings().blind_index_secret_arn)
    return BlindIndex(secret["SecretString"].encode())


def data_keys() -> DataKeys:
    return DataKeys(settings().pii_key_id)
