"""Requests to the emulator's moto carry a signature's headers without the signature's work.

moto reads a request's `Authorization` header for its access key and credential scope (the
account and region that serve it) and never checks the signature. botocore computes one per
request all the same: a canonical request, a SHA-256 of the body (a transaction of a dozen
profile items, a lake object) and five HMACs, ~5% of the functions' CPU over the demo (py-spy,
2026-12-07). In the emulator's processes (never in a Lambda: nothing of `infra/` is deployed)
header signing keeps every header botocore sets (the date, the token, S3's payload hash) and
the `Authorization` header's credential scope and signed headers, with a placeholder for the
signature. Presigned URLs (query signing: the privacy exports' links) are signed as ever.
"""

from __future__ import annotations

from typing import Any

from botocore import auth
from botocore.exceptions import NoCredentialsError

# What the signature's place holds: 64 hex digits, as a real one.
PLACEHOLDER = "0" * 64

_installed: dict[str, Any] = {}


def _add_auth(self: Any, request: Any) -> None:
    """SigV4Auth.add_auth without the canonical request, its hash and the HMACs."""
    if isinstance(self, auth.SigV4QueryAuth):  # a presigned URL: its signature is its point
        _installed["SigV4Auth.add_auth"](self, request)
        return
    if self.credentials is None:
        raise NoCredentialsError()
    now = getattr(auth, "get_current_datetime")()  # noqa: B009 - read at each call, as botocore
    request.context["timestamp"] = now.strftime(auth.SIGV4_TIMESTAMP)
    self._modify_request_before_signing(request)
    self._inject_signature_to_request(request, PLACEHOLDER)


def install() -> None:
    """Header signing without the signature, for every botocore client of this process."""
    if _installed:
        return
    _installed["SigV4Auth.add_auth"] = auth.SigV4Auth.add_auth
    auth.SigV4Auth.add_auth = _add_auth  # type: ignore[method-assign]


def installed() -> bool:
    return bool(_installed)


def uninstall() -> None:
    """botocore's own signing again (the tests compare the two)."""
    if _installed:
        auth.SigV4Auth.add_auth = _installed.pop("SigV4Auth.add_auth")  # type: ignore[method-assign]
