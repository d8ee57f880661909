"""The PII codec keeps the data keys it opened for a request or a folded batch: each customer's
key costs one KMS call, and a record read again after a failed commit always gets a cipher for
the key it will be stored with."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from crm.keys import DataKeys
from crm.pii import FieldCipher
from crm.profiles.pii_codec import PiiCodec
from crm.profiles.records import ProfileRecord

NOW = datetime(2026, 11, 23, tzinfo=UTC)


class CountingKeys(DataKeys):
    """A fresh random key per create (as KMS gives), 'wrapped' as itself; counts the calls."""

    def __init__(self) -> None:
        super().__init__("test-key")
        self.created = 0
        self.unwrapped = 0

    def create(self, customer_id: str) -> tuple[bytes, bytes]:
        self.created += 1
        key = os.urandom(32)
        return key, key

    def unwrap(self, customer_id: str, wrapped: bytes) -> bytes:
        self.unwrapped += 1
        return wrapped


def record(customer_id: str = "c-1", wrapped_key: bytes | None = None) -> ProfileRecord:
    made = ProfileRecord(customer_id=customer_id, created_at=NOW, updated_at=NOW)
    made.wrapped_key = wrapped_key
    return made


def test_a_customer_key_is_unwrapped_once_for_many_notes() -> None:
    keys = CountingKeys()
    codec = PiiCodec(keys)
    stored = os.urandom(32)
    sealed = [
        codec.cipher(record("c-1", stored)).seal(f"note:{n}", "罐子有凹痕") for n in range(10)
    ]
    codec.cipher(record("c-2", os.urandom(32)))
    assert keys.unwrapped == 2  # one per customer, not one per note
    assert FieldCipher("c-1", stored).open("note:9", sealed[9]) == "罐子有凹痕"


def test_a_record_read_again_without_a_key_gets_one_it_will_store() -> None:
    """The key created for a commit that failed was never stored: the record read again has
    none, and must not be sealed under a key nobody keeps."""
    keys = CountingKeys()
    codec = PiiCodec(keys)
    codec.cipher(record())  # creates a key; the commit that would store it fails
    again = record()
    sealed = codec.cipher(again).seal("name", "张三")
    assert again.wrapped_key is not None
    assert FieldCipher("c-1", again.wrapped_key).open("name", sealed) == "张三"


def test_a_record_read_again_with_another_key_gets_that_key() -> None:
    """Another request created the customer's key meanwhile: seal under the stored one."""
    codec = PiiCodec(CountingKeys())
    codec.cipher(record())
    theirs = os.urandom(32)
    sealed = codec.cipher(record(wrapped_key=theirs)).seal("name", "张三")
    assert FieldCipher("c-1", theirs).open("name", sealed) == "张三"
