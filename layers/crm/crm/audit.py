"""Recording who read a customer's unmasked PII (platform).

The profiles family serves unmasked reads to support roles; the privacy family keeps the audit
trail. Profiles may not import privacy, so it calls this Protocol, and the composition root
connects it to the privacy family's audit log. Only ids, field names and a reason code
(`why`: what the read served, never free text) are recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

# Why staff saw a customer's PII unmasked: the reason codes of the audit trail's `pii_read`.
PROFILE_VIEW = "profile_view"  # GET /customers/{id} (and a profile edit's answer)
CUSTOMER_SEARCH = "customer_search"  # POST /customers/search, one entry per profile shown
TICKET_CONVERSATION = "ticket_conversation"  # the messages of a customer's tickets
AFTERSALES_CASE = "aftersales_case"  # an after-sales case's note and stage reasons


class PiiReads(Protocol):
    def unmasked_read(
        self, actor: str, customer_id: str, fields: Sequence[str], why: str = PROFILE_VIEW
    ) -> None:
        """`actor` saw these PII fields of the customer unmasked, for `why`."""
        ...


class NoPiiReads:
    """Records nothing (tests of one family; a stack without the privacy family)."""

    def unmasked_read(
        self, actor: str, customer_id: str, fields: Sequence[str], why: str = PROFILE_VIEW
    ) -> None:
        return None
