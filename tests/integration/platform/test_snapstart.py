"""SnapStart: the template turns it on where it pays, and a snapshot is primed without AWS."""

from __future__ import annotations

import random
import sys
import types
from collections.abc import Callable

import pytest

from crm.composition import root
from crm.snapstart import before_snapshot, reseed
from crm_local.harness import Suite, count_requests
from crm_local.template import load_template

SNAPSHOTTED = {"ApiFunction", "ProfileEventsFunction", "JourneyTriggersFunction"}


def test_the_api_the_event_folder_and_the_journey_triggers_run_from_snapshots() -> None:
    template = load_template()
    for spec in template.functions():
        props = template.resources[spec.logical_id]["Properties"]
        snap = props.get("SnapStart", {}).get("ApplyOn")
        if spec.logical_id in SNAPSHOTTED:
            assert snap == "PublishedVersions"
            # Snapshots live on published versions; a layer change must publish new ones.
            assert props["AutoPublishAlias"]
            assert props["AutoPublishAliasAllProperties"] is True
        else:
            assert snap is None, spec.logical_id
    assert template.resources["CrmLayer"]["Properties"]["PublishLambdaVersion"] is True


def test_outside_lambda_nothing_is_registered() -> None:
    assert before_snapshot(lambda: None) is False


def test_in_lambda_the_prime_is_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    registered: list[Callable[[], object]] = []
    restored: list[Callable[[], object]] = []
    fake = types.ModuleType("snapshot_restore_py")
    fake.register_before_snapshot = registered.append  # type: ignore[attr-defined]
    fake.register_after_restore = restored.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", fake)

    def prime() -> None:
        return None

    assert before_snapshot(prime) is True
    assert registered == [prime]
    assert restored == [reseed]


def test_a_restored_container_draws_its_own_jitter() -> None:
    # Two containers restored from one snapshot start from the same `random` state.
    state = random.getstate()
    snapshot_draws = [random.random() for _ in range(3)]
    random.setstate(state)
    reseed()
    assert [random.random() for _ in range(3)] != snapshot_draws


def test_priming_builds_the_services_and_clients_without_calling_aws(suite: Suite) -> None:
    with count_requests() as calls:
        crm = root().prime("dynamodb", "kms", "sqs", "secretsmanager")
    assert dict(calls) == {}
    assert "profiles" in crm.__dict__
    assert "segments" in crm.__dict__
    assert "tickets" in crm.__dict__


def test_the_journey_triggers_snapshot_holds_the_journey_engine_without_calling_aws(
    suite: Suite,
) -> None:
    with count_requests() as calls:
        crm = root().prime("dynamodb", "sqs", "s3", parts=("journey_engine",))
    assert dict(calls) == {}
    assert "journey_engine" in crm.__dict__


def test_the_event_folders_snapshot_holds_the_folding_without_calling_aws(suite: Suite) -> None:
    with count_requests() as calls:
        crm = root().prime(
            "dynamodb", "s3", "events", "kms", "secretsmanager", parts=("event_folding",)
        )
    assert dict(calls) == {}
    assert {"event_folding", "profile_identity", "profile_service"} <= set(crm.__dict__)
    assert "profiles" not in crm.__dict__  # the API's family: not what the folder uses
