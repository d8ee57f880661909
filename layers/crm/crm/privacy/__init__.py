"""Privacy family: requests of access (an export bundle), erasure (every store of the
registry, verified), rectification, consent withdrawal and restriction; deadlines per
regulation on timers; a hash-chained audit trail archived under Object Lock. docs/privacy.md.

This module is the family's public interface: functions import from here.
Each name loads its module when first read (crm/exports.py).
"""

from typing import TYPE_CHECKING

from crm.exports import lazy

if TYPE_CHECKING:
    from crm.privacy.audit import AuditLog
    from crm.privacy.executor import PrivacyExecutor
    from crm.privacy.models import RequestKind, RequestStatus
    from crm.privacy.routes import privacy_routes
    from crm.privacy.service import PrivacyRequests
    from crm.privacy.settings import PrivacySettings

__all__ = [
    "AuditLog",
    "PrivacyExecutor",
    "PrivacyRequests",
    "PrivacySettings",
    "RequestKind",
    "RequestStatus",
    "privacy_routes",
]
__getattr__ = lazy(
    __name__,
    {
        "AuditLog": "crm.privacy.audit",
        "PrivacyExecutor": "crm.privacy.executor",
        "RequestKind": "crm.privacy.models",
        "RequestStatus": "crm.privacy.models",
        "privacy_routes": "crm.privacy.routes",
        "PrivacyRequests": "crm.privacy.service",
        "PrivacySettings": "crm.privacy.settings",
    },
    globals(),
)
