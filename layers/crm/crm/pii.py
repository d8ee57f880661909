"""Personal data: normalisation, masking, field encryption and the blind index.

Every PII field is sealed with AES-256-GCM under a data key of its own customer; the data key is
wrapped by KMS and stored beside the profile, so deleting it makes every copy unreadable
(crypto-shredding). The field's name and the customer id are the associated data, so a
ciphertext cannot be moved to another field or customer. Lookups by phone or email use an HMAC
of the normalised value (the blind index), never the plaintext.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

_CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")
_SEPARATORS = re.compile(r"[\s\-().]")

SEAL_PREFIX = "v1:"


def normalize_phone(raw: str) -> str:
    """E.164 form. Bare 11-digit numbers are read as mainland China mobiles."""
    number = _SEPARATORS.sub("", raw)
    if number.startswith("00"):
        number = "+" + number[2:]
    if _CN_MOBILE.match(number):
        return "+86" + number
    if number.startswith("+86") and not _CN_MOBILE.match(number[3:]):
        raise ValueError("not a valid mainland China mobile number")
    if not _E164.match(number):
        raise ValueError("not a valid phone number (E.164 or an 11-digit China mobile)")
    return number


def mask_phone(e164: str) -> str:
    """`+8613812345678` -> `138****5678`; other countries keep their prefix."""
    national = e164[3:] if e164.startswith("+86") else e164
    if len(national) <= 7:
        return national[:2] + "*" * (len(national) - 2)
    return national[:3] + "****" + national[-4:]


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_name(name: str) -> str:
    return name[:1] + "*" * max(len(name) - 1, 1)


def mask_text(_: str) -> str:
    return "****"


class FieldCipher:
    """Seals and opens the PII fields of one owner with the owner's plaintext data key: a
    customer, or a batch of events on its way through a queue."""

    def __init__(self, owner: str, data_key: bytes) -> None:
        # Imported with the first cipher: a function that seals nothing does not load it.
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._owner = owner
        self._aead = AESGCM(data_key)

    def _aad(self, field: str) -> bytes:
        return f"{self._owner}|{field}".encode()

    def seal(self, field: str, plaintext: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), self._aad(field))
        return SEAL_PREFIX + base64.b64encode(nonce + sealed).decode()

    def open(self, field: str, sealed: str) -> str:
        if not sealed.startswith(SEAL_PREFIX):
            raise ValueError("unknown PII seal format")
        raw = base64.b64decode(sealed[len(SEAL_PREFIX) :])
        return self._aead.decrypt(raw[:12], raw[12:], self._aad(field)).decode()


class BlindIndex:
    """Keyed hash for equality lookups on PII without storing it in a key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def token(self, kind: str, normalized_value: str) -> str:
        digest = hmac.new(self._key, f"{kind}:{normalized_value}".encode(), hashlib.sha256)
        return digest.hexdigest()

    def pseudonym(self, customer_id: str) -> str:
        """Stable pseudonymous id for the data lake: joinable there, not reversible."""
        return self.token("pseudonym", customer_id)[:32]
