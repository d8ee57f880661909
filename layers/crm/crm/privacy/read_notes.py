"""The note an unmasked PII read queues for the audit chain (`crm.privacy.reads`).

Apart from the family's records: the API's first read of a profile loads this module, and
`crm.privacy.records` brings the privacy requests' API models (and the profiles' behind them)
with it. The consumer appends the notes (`crm.privacy.audit`).
"""

import re
from datetime import datetime

from pydantic import ConfigDict, Field, field_validator

from crm.models import Record

_ID = r"^[A-Za-z0-9_.:@\-]{1,128}$"


class PiiReadNote(Record):
    """One unmasked PII read by staff, as the API queues it for the audit chain (AuditQueue,
    encrypted): ids, field names and a reason code, never a value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    read_id: str = Field(pattern=_ID)
    actor: str = Field(pattern=_ID)
    customer_id: str = Field(pattern=_ID)
    fields: list[str] = Field(max_length=64)
    why: str = Field(pattern=r"^[a-z_]{1,64}$")
    at: datetime

    @field_validator("fields")
    @classmethod
    def _field_names(cls, value: list[str]) -> list[str]:
        if any(not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", name) for name in value):
            raise ValueError("a field name is letters, digits, dots and underscores")
        return value
