"""The privacy family's resources and policy, from the environment template.yaml sets."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from crm.config import env
from crm.privacy.models import RequestKind

# Kinds a privacy officer approves before anything happens (PRIVACY_APPROVAL_KINDS, comma
# separated): erasure by default, as it cannot be undone.
DEFAULT_APPROVAL_KINDS = frozenset({RequestKind.ERASURE})


@dataclass(frozen=True)
class PrivacyPolicy:
    approval_kinds: frozenset[RequestKind] = DEFAULT_APPROVAL_KINDS
    duplicate_window_days: int = 30  # the same customer and kind within it joins the open one
    export_link_ttl_s: int = 3600  # a presigned URL to the bundle works this long
    max_remnants_shown: int = 20  # per store, in a request's proof (the total is kept)


@dataclass(frozen=True)
class PrivacySettings:
    privacy_table: str
    exports_bucket: str
    audit_archive_bucket: str
    privacy_queue_url: str
    audit_queue_url: str  # staff's unmasked PII reads, appended to the audit chain in batches
    policy: PrivacyPolicy = field(default_factory=PrivacyPolicy)

    @classmethod
    def from_env(cls) -> PrivacySettings:
        raw = os.environ.get("PRIVACY_APPROVAL_KINDS")
        kinds = (
            frozenset(RequestKind(k.strip()) for k in raw.split(",") if k.strip())
            if raw is not None
            else DEFAULT_APPROVAL_KINDS
        )
        return cls(
            privacy_table=env("PRIVACY_TABLE"),
            exports_bucket=env("EXPORTS_BUCKET"),
            audit_archive_bucket=env("AUDIT_ARCHIVE_BUCKET"),
            privacy_queue_url=env("PRIVACY_QUEUE_URL"),
            audit_queue_url=env("AUDIT_QUEUE_URL"),
            policy=PrivacyPolicy(approval_kinds=kinds),
        )
