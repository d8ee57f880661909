"""Every table and bucket of template.yaml is claimed by a store of the personal-data
registry, and every claim names one: a new table or bucket without a store fails here."""

from __future__ import annotations

from typing import Any

import pytest

from crm.composition import Crm, Settings
from crm.personal_data import PersonalDataStore
from crm.privacy.registry import personal_data_stores
from crm_local.template import load_template

DATA_TYPES = ("AWS::DynamoDB::Table", "AWS::S3::Bucket")


def _placeholder(value: Any, parameters: dict[str, Any]) -> str:
    """A variable's value without provisioning: a parameter's default, or a name standing for
    the resource it refers to (building the stores makes no AWS call, so any name does)."""
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in parameters:
            return str(parameters[value["Ref"]])
        return "stand-in-" + "-".join(str(v) for v in value.values())
    return str(value)


@pytest.fixture
def stores(monkeypatch: pytest.MonkeyPatch) -> tuple[PersonalDataStore, ...]:
    template = load_template()
    parameters = template.parameter_defaults()
    for spec in template.functions():
        for name, value in spec.environment.items():
            monkeypatch.setenv(name, _placeholder(value, parameters))
    return personal_data_stores(Crm(Settings.from_env()))


def coverage(stores: tuple[PersonalDataStore, ...]) -> tuple[set[str], set[str]]:
    """(tables and buckets no store claims, claims naming no table or bucket)."""
    template = load_template()
    data = {logical for kind in DATA_TYPES for logical in template.of_type(kind)}
    claimed = {claim for store in stores for claim in store.claims}
    return data - claimed, claimed - data


def test_every_table_and_bucket_is_claimed_by_a_store(
    stores: tuple[PersonalDataStore, ...],
) -> None:
    unclaimed, unknown = coverage(stores)
    assert unclaimed == set(), "tables or buckets no personal-data store claims"
    assert unknown == set(), "claims naming no table or bucket of the template"


def test_a_store_missing_from_the_registry_is_noticed(
    stores: tuple[PersonalDataStore, ...],
) -> None:
    without_lake = tuple(store for store in stores if store.name != "lake")
    assert coverage(without_lake) == ({"LakeBucket"}, set())
    without_tickets = tuple(store for store in stores if store.name != "tickets")
    assert coverage(without_tickets)[0] == {"TicketsTable"}


def test_each_resource_is_claimed_once_and_stores_have_distinct_names(
    stores: tuple[PersonalDataStore, ...],
) -> None:
    claims = [claim for store in stores for claim in store.claims]
    assert len(claims) == len(set(claims))
    names = [store.name for store in stores]
    assert len(names) == len(set(names))


def test_erasure_order_timers_first_profiles_last(
    stores: tuple[PersonalDataStore, ...],
) -> None:
    names = [store.name for store in stores]
    # Timers find SLA and deferral timers through ticket ids and message hashes the tickets
    # and campaigns stores still hold; profiles' identities are needed until the end.
    assert names.index("timers") < names.index("tickets")
    assert names.index("timers") < names.index("campaigns")
    assert names[-1] == "profiles"
