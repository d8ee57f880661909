"""Privacy family: requests of access (an export bundle), erasure (every store of the
registry, verified), rectification, consent withdrawal and restriction; deadlines per
regulation on timers; a hash-chained audit trail archived under Object Lock. docs/privacy.md.

This module is the family's public interface: functions import from here.
"""

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
