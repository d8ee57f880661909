"""The profiles family's resources, from the environment template.yaml sets."""

from __future__ import annotations

from typing import NamedTuple

from crm.config import DataRegion, data_region, env


class ProfilesSettings(NamedTuple):
    customers_table: str
    profile_events_queue_url: str
    import_queue_url: str
    imports_bucket: str
    pii_key_id: str
    blind_index_secret_arn: str
    data_region: DataRegion

    @classmethod
    def from_env(cls) -> ProfilesSettings:
        return cls(
            customers_table=env("CUSTOMERS_TABLE"),
            profile_events_queue_url=env("PROFILE_EVENTS_QUEUE_URL"),
            import_queue_url=env("IMPORT_QUEUE_URL"),
            imports_bucket=env("IMPORTS_BUCKET"),
            pii_key_id=env("PII_KEY_ID"),
            blind_index_secret_arn=env("BLIND_INDEX_SECRET_ARN"),
            data_region=data_region(),
        )
