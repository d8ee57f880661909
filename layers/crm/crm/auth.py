"""Who is calling and what they may do. Identity comes from verified JWT claims only."""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, NamedTuple

from crm.errors import Forbidden, Unauthorized


class Role(StrEnum):
    CUSTOMER = "customer"
    SUPPORT_AGENT = "support_agent"
    SUPPORT_MANAGER = "support_manager"
    MARKETER = "marketer"
    ANALYST = "analyst"
    PRIVACY_OFFICER = "privacy_officer"
    ADMIN = "admin"


class Permission(StrEnum):
    READ_PROFILE = "read_profile"
    READ_PII = "read_pii"
    CREATE_PROFILE = "create_profile"
    EDIT_PROFILE = "edit_profile"
    MERGE_PROFILES = "merge_profiles"
    FIND_CUSTOMERS = "find_customers"
    EDIT_CONSENT = "edit_consent"
    EDIT_TAGS = "edit_tags"
    ADJUST_POINTS = "adjust_points"
    SEND_EVENTS = "send_events"
    # A shop's history loaded at once (POST /imports): customers created without a person
    # behind each request, and no journey reacting. Admins only.
    IMPORT_HISTORY = "import_history"
    READ_SEGMENTS = "read_segments"
    EDIT_SEGMENTS = "edit_segments"
    RUN_SEGMENTS = "run_segments"
    READ_CAMPAIGNS = "read_campaigns"  # journeys, sends, reports, the contact policy, the outbox
    EDIT_CAMPAIGNS = "edit_campaigns"  # define, start, pause, cancel; the contact policy
    REDEEM_COUPONS = "redeem_coupons"  # a store's point of sale redeeming a code
    READ_TICKETS = "read_tickets"  # tickets, conversations (customers: their own)
    OPEN_TICKET = "open_ticket"  # open a ticket, write in its conversation (customers: their own)
    WORK_TICKETS = "work_tickets"  # reply, assign, note, merge, change status
    MANAGE_SLA = "manage_sla"  # SLA policies, calendars, escalation rules
    ADVANCE_AFTERSALES = "advance_aftersales"  # upstream systems and agents move after-sales cases
    # Product feedback aggregates (no text, no customer ids): analysts chart them.
    READ_FEEDBACK = "read_feedback"
    # Privacy requests: a customer files and reads their own, an agent files on their behalf
    # (the customer confirms), a privacy officer approves, extends and audits.
    FILE_PRIVACY_REQUESTS = "file_privacy_requests"
    READ_PRIVACY_REQUESTS = "read_privacy_requests"
    APPROVE_PRIVACY_REQUESTS = "approve_privacy_requests"
    READ_PRIVACY_AUDIT = "read_privacy_audit"
    # The analytics dashboard's metrics (aggregates over the pseudonymous lake, no customer ids).
    READ_ANALYTICS = "read_analytics"


_P = Permission
_SUPPORT = {
    _P.READ_PROFILE, _P.READ_PII, _P.CREATE_PROFILE, _P.EDIT_PROFILE,
    _P.EDIT_CONSENT, _P.EDIT_TAGS, _P.ADJUST_POINTS, _P.FIND_CUSTOMERS,
    _P.READ_TICKETS, _P.OPEN_TICKET, _P.WORK_TICKETS, _P.ADVANCE_AFTERSALES,
    _P.FILE_PRIVACY_REQUESTS, _P.READ_PRIVACY_REQUESTS,
}  # fmt: skip

GRANTS: dict[Role, frozenset[Permission]] = {
    # A customer's grants hold for their own profile only (see Caller.can).
    Role.CUSTOMER: frozenset(
        {_P.READ_PROFILE, _P.READ_PII, _P.EDIT_PROFILE, _P.EDIT_CONSENT, _P.SEND_EVENTS}
        | {_P.READ_TICKETS, _P.OPEN_TICKET}
        | {_P.FILE_PRIVACY_REQUESTS, _P.READ_PRIVACY_REQUESTS}
    ),
    Role.SUPPORT_AGENT: frozenset(_SUPPORT | {_P.REDEEM_COUPONS, _P.READ_FEEDBACK}),
    Role.SUPPORT_MANAGER: frozenset(
        _SUPPORT | {_P.MERGE_PROFILES, _P.REDEEM_COUPONS, _P.MANAGE_SLA, _P.READ_FEEDBACK}
    ),
    Role.MARKETER: frozenset(
        {_P.READ_PROFILE, _P.EDIT_TAGS, _P.READ_SEGMENTS, _P.EDIT_SEGMENTS}
        | {_P.READ_CAMPAIGNS, _P.EDIT_CAMPAIGNS, _P.REDEEM_COUPONS, _P.READ_ANALYTICS}
    ),
    Role.ANALYST: frozenset(
        {_P.READ_PROFILE, _P.READ_SEGMENTS, _P.READ_CAMPAIGNS, _P.READ_FEEDBACK}
        | {_P.READ_ANALYTICS}
    ),
    Role.PRIVACY_OFFICER: frozenset(
        {_P.READ_PROFILE, _P.READ_PII, _P.EDIT_CONSENT, _P.FIND_CUSTOMERS}
        | {_P.FILE_PRIVACY_REQUESTS, _P.READ_PRIVACY_REQUESTS, _P.APPROVE_PRIVACY_REQUESTS}
        | {_P.READ_PRIVACY_AUDIT}
    ),
    Role.ADMIN: frozenset(Permission),
}


class Caller(NamedTuple):
    """Who calls, as their verified token says (or a process of the CRM itself). A value the
    code builds, never parsed from input: a tuple, not a model (a pydantic class costs every
    cold start its definition and its first validation builds its schema)."""

    subject: str
    roles: frozenset[Role]
    customer_id: str | None = None
    # A process of the CRM acting on its own (journeys, dispatch, the privacy worker): no
    # person sees what it reads, so its reads are not audited as a staff member's.
    system: bool = False

    @property
    def is_staff(self) -> bool:
        return any(role is not Role.CUSTOMER for role in self.roles)

    def can(self, permission: Permission, customer_id: str | None = None) -> bool:
        for role in self.roles:
            if permission not in GRANTS[role]:
                continue
            if role is not Role.CUSTOMER:
                return True
            if customer_id is not None and customer_id == self.customer_id:
                return True
        return False

    def require(self, permission: Permission, customer_id: str | None = None) -> None:
        if self.can(permission, customer_id):
            return
        action = permission.value.replace("_", " ")
        if Role.CUSTOMER in self.roles and permission in GRANTS[Role.CUSTOMER]:
            raise Forbidden(f"a customer's token may {action} of its own customer only")
        raise Forbidden(f"your role may not {action}")


_GROUP_SPLIT = re.compile(r"[\s,\[\]\"]+")


def caller_from_claims(claims: Mapping[str, Any] | None, staff_issuer: str) -> Caller:
    """Build the caller from Cognito claims as API Gateway passes them.

    REST APIs hand `cognito:groups` over as one string ("[admin, marketer]" or "admin,marketer"),
    HTTP APIs and test tokens as a list; both are accepted. Unknown groups are ignored.

    Staff roles count only in tokens the staff user pool issued (`staff_issuer`, its `iss`):
    that pool requires MFA and has no self sign-up, while the customers' pool has both open. A
    staff group created in the customers' pool by mistake grants nothing.
    """
    if not claims or not claims.get("sub"):
        raise Unauthorized("no verified identity in the request")
    raw = claims.get("cognito:groups", "")
    names = raw if isinstance(raw, list) else _GROUP_SPLIT.split(str(raw))
    roles = frozenset(Role(n) for n in names if n in Role.__members__.values())
    if not roles:
        raise Forbidden("the caller belongs to no CRM role")
    if roles - {Role.CUSTOMER} and claims.get("iss") != staff_issuer:
        raise Forbidden("staff roles count only in tokens of the staff user pool (MFA required)")
    customer_id = claims.get("custom:customer_id") or None
    if Role.CUSTOMER in roles and not customer_id:
        raise Forbidden("a customer token must carry custom:customer_id")
    return Caller(subject=str(claims["sub"]), roles=roles, customer_id=customer_id)
