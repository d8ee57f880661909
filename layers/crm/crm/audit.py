"""Recording who read a customer's unmasked PII (platform).

The profiles family serves unmasked reads to support roles; the privacy family keeps the audit
trail. Profiles may not import privacy, so it calls this Protocol, and the composition root
connects it to the privacy family's audit log. Only ids and field names are recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class PiiReads(Protocol):
    def unmasked_read(self, actor: str, customer_id: str, fields: Sequence[str]) -> None:
        """`actor` saw these PII fields of the customer unmasked."""
        ...


class NoPiiReads:
    """Records nothing (tests of one family; a stack without the privacy family)."""

    def unmasked_read(self, actor: str, customer_id: str, fields: Sequence[str]) -> None:
        return None
