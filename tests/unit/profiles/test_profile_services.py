"""Profile use cases on in-memory fakes: no AWS, so every path (races included) is exact."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest

from crm.auth import Caller, Role
from crm.errors import Conflict
from crm.keys import DataKeys
from crm.pii import BlindIndex
from crm.profiles.change_models import (
    ConsentChange,
    EditProfile,
    MergeCustomers,
    PointsChange,
    TagChange,
)
from crm.profiles.edits import ProfileEdits
from crm.profiles.identity import IdentityResolution
from crm.profiles.models import UpsertCustomer
from crm.profiles.points import LoyaltyPoints
from crm.profiles.service import MAX_ATTEMPTS, ProfileService
from crm.profiles.store import ProfileStore, StaleProfile
from crm.profiles.views import CustomerViews
from tests.fakes import FakeDataKeys, FakeProfileStore, RecordingRuleSegments, sequence_ids

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
ADMIN = Caller(subject="admin-1", roles=frozenset({Role.ADMIN}))


class Family:
    def __init__(self) -> None:
        self.store = FakeProfileStore()
        self.rules = RecordingRuleSegments()
        self.sleeps: list[float] = []
        self.service = ProfileService(
            cast(ProfileStore, self.store),
            cast(DataKeys, FakeDataKeys()),
            lambda: BlindIndex(b"test-key"),
            self.rules,
            clock=lambda: NOW,
            ids=sequence_ids("c"),
            sleep=self.sleeps.append,
        )
        views = CustomerViews(self.service)
        self.identity = IdentityResolution(self.service, views)
        self.edits = ProfileEdits(self.service, views, self.identity)
        self.points = LoyaltyPoints(self.service)

    def create(self, external_id: str, **attrs: Any) -> str:
        body = UpsertCustomer.model_validate(
            {"identities": [{"channel": "app", "external_id": external_id}], "attributes": attrs}
        )
        return self.identity.upsert_customer(ADMIN, body).customer_id


@pytest.fixture
def family() -> Family:
    return Family()


def test_a_lost_race_is_retried_with_jittered_backoff_and_then_a_409(family: Family) -> None:
    attempts: list[int] = []

    def always_stale() -> None:
        attempts.append(1)
        raise StaleProfile("c1")

    with pytest.raises(Conflict, match="changed by other requests"):
        family.service.retry(always_stale)
    assert len(attempts) == MAX_ATTEMPTS
    assert len(family.sleeps) == MAX_ATTEMPTS - 1
    assert all(0 <= s <= 0.5 for s in family.sleeps)
    assert len(set(family.sleeps)) > 1  # jittered, not one fixed delay


def test_a_race_lost_once_commits_on_the_next_attempt(family: Family) -> None:
    cid = family.create("u-1")
    original = family.store.commit
    calls: list[int] = []

    def commit_losing_once(writes: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise StaleProfile(cid)
        original(writes)

    family.store.commit = commit_losing_once  # type: ignore[method-assign]
    change = PointsChange(txn_id="t1", kind="earn", points=10)
    assert family.points.change_points(ADMIN, cid, change).balance == 10
    assert len(calls) == 2
    assert len(family.sleeps) == 1


@pytest.mark.parametrize("how", ["tag", "points", "consent", "edit"])
def test_every_kind_of_profile_change_re_evaluates_rule_segments(family: Family, how: str) -> None:
    cid = family.create("u-2")
    family.rules.evaluated.clear()
    if how == "tag":
        family.edits.change_tags(ADMIN, cid, TagChange.model_validate({"add": [{"name": "vip"}]}))
    elif how == "points":
        family.points.change_points(ADMIN, cid, PointsChange(txn_id="p", kind="earn", points=1000))
    elif how == "consent":
        consent = {"purpose": "marketing_sms", "granted": True, "source": "app"}
        family.edits.change_consent(ADMIN, cid, ConsentChange.model_validate(consent))
    else:
        edit = EditProfile.model_validate({"version": 1, "attributes": {"city": "杭州"}})
        family.edits.edit_profile(ADMIN, cid, edit)
    assert family.rules.evaluated == [cid]
    entered = how in ("tag", "points")
    assert ("vip" in family.store.profiles[cid].segments) is entered
    shifts = [s for s in family.rules.announced if s.customer_id == cid]
    assert bool(shifts) is entered
    if entered:
        assert shifts[-1].after == ("vip",)


def test_leaving_a_rule_segment_is_announced_too(family: Family) -> None:
    cid = family.create("u-3")
    family.edits.change_tags(ADMIN, cid, TagChange.model_validate({"add": [{"name": "vip"}]}))
    family.edits.change_tags(ADMIN, cid, TagChange.model_validate({"remove": ["vip"]}))
    assert family.store.profiles[cid].segments == []
    assert family.rules.announced[-1].before == ("vip",)
    assert family.rules.announced[-1].after == ()


def test_a_merge_re_evaluates_the_survivor_and_empties_the_absorbed(family: Family) -> None:
    old = family.create("u-4")
    young = family.create("u-5")
    family.points.change_points(ADMIN, young, PointsChange(txn_id="y", kind="earn", points=600))
    family.points.change_points(ADMIN, old, PointsChange(txn_id="o", kind="earn", points=500))
    family.identity.merge_customers(ADMIN, old, MergeCustomers(source_customer_id=young))
    assert family.store.profiles[old].segments == ["vip"]  # 1,100 points together
    assert family.store.profiles[young].segments == []
    assert family.store.profiles[young].merged_into == old


def test_one_identity_twice_is_one_profile(family: Family) -> None:
    first = family.create("u-6", name="张三")
    assert family.create("u-6") == first
    assert len(family.store.profiles) == 1
