"""Late and historical events reach the Parquet (what Athena reads in AWS): a fold batch with
rows for days no nightly compaction covers again leaves one marker naming those days, and the
nightly run compacts them too, then deletes exactly the markers it listed (docs/analytics.md
"Compaction"). Through the real path on moto: POST /events -> ProfileEventsFunction -> the lake
-> LakeCompactionFunction."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crm import aws
from crm.analytics.parquet import from_parquet
from crm.aws import S3_DELETE_MAX as DELETE_MAX
from crm.lake import LATE_PREFIX, Lake, LateMarker
from crm_local.harness import Suite, count_requests
from tests.integration.analytics.test_compaction import SCHEDULE
from tests.integration.privacy_data.test_worker_permissions import Grant, _covers, _needed, granted
from tests.integration.profiles.test_profile_events import new_customer, paid

FOLD, COMPACTION = "ProfileEventsFunction", "LakeCompactionFunction"

NOW = datetime.now(UTC).replace(microsecond=0)


def days_ago(days: int) -> str:
    return (NOW - timedelta(days=days)).isoformat().replace("+00:00", "Z")


def day_of(days: int) -> str:
    return (NOW - timedelta(days=days)).date().isoformat()


def bucket(suite: Suite) -> str:
    return str(suite.stack.refs["LakeBucket"])


def markers(suite: Suite) -> dict[str, bytes]:
    listed = aws.s3().list_objects_v2(Bucket=bucket(suite), Prefix=LATE_PREFIX)
    return {
        o["Key"]: aws.s3().get_object(Bucket=bucket(suite), Key=o["Key"])["Body"].read()
        for o in listed.get("Contents", [])
    }


def parquet_order_ids(suite: Suite, day: str) -> list[str]:
    key = f"parquet/events/type=order_paid/dt={day}/part-0000.parquet"
    try:
        body = aws.s3().get_object(Bucket=bucket(suite), Key=key)["Body"].read()
    except aws.s3().exceptions.NoSuchKey:
        return []
    return sorted(str(r["order_id"]) for r in from_parquet(body).to_pylist())


def fold(suite: Suite, *events: dict[str, object]) -> None:
    assert suite.call("POST", "/events", {"events": list(events)}).status == 202
    suite.drain()


def test_an_event_ten_days_old_is_in_its_days_parquet_after_the_nightly_run(suite: Suite) -> None:
    cid = new_customer(suite)
    fold(suite, paid(cid, "o-late", "12.00", days_ago(10)))
    (key, body) = next(iter(markers(suite).items()))
    assert key.startswith(LATE_PREFIX)
    marker = json.loads(body)
    assert marker["days"] == [day_of(10)]
    assert marker["tables"] == ["events"]
    assert cid not in body.decode()  # ids of batches and days only
    assert parquet_order_ids(suite, day_of(10)) == []

    done = suite.invoke("LakeCompactionFunction", SCHEDULE)
    assert parquet_order_ids(suite, day_of(10)) == ["o-late"]
    assert done["days"] == sorted([day_of(10), day_of(2), day_of(1)])
    assert done["markers"] == 1
    assert markers(suite) == {}

    # Idempotent: the next night neither finds a marker nor loses the day's Parquet.
    again = suite.invoke("LakeCompactionFunction", SCHEDULE)
    assert (again["days"], again["markers"]) == ([day_of(2), day_of(1)], 0)
    assert parquet_order_ids(suite, day_of(10)) == ["o-late"]


def test_todays_events_leave_no_marker_and_a_mixed_batch_names_only_its_late_days(
    suite: Suite,
) -> None:
    cid = new_customer(suite)
    fold(suite, paid(cid, "o-now", "1.00", days_ago(0)), paid(cid, "o-1", "1.00", days_ago(1)))
    assert markers(suite) == {}  # yesterday's rows: the next night covers them
    fold(
        suite,
        paid(cid, "o-2", "1.00", days_ago(0)),
        paid(cid, "o-3", "1.00", days_ago(3)),
        paid(cid, "o-4", "1.00", days_ago(40)),
    )
    (body,) = markers(suite).values()
    assert json.loads(body)["days"] == [day_of(40), day_of(3)]


def test_a_marker_written_after_the_run_listed_stays_for_the_next_night(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = new_customer(suite)
    fold(suite, paid(cid, "o-1", "5.00", days_ago(10)))
    listed_before = set(markers(suite))
    listing = Lake.late_markers

    def listed_then_a_batch_lands(self: Lake) -> list[LateMarker]:
        found = listing(self)
        # Another container folds history while the run compacts what it listed.
        fold(suite, paid(cid, "o-2", "7.00", days_ago(20)))
        return found

    monkeypatch.setattr(Lake, "late_markers", listed_then_a_batch_lands)
    done = suite.invoke("LakeCompactionFunction", SCHEDULE)
    monkeypatch.undo()
    assert done["markers"] == 1
    assert day_of(20) not in done["days"]
    left = set(markers(suite))
    assert len(left) == 1
    assert not left & listed_before  # the listed marker deleted, the new one kept
    assert parquet_order_ids(suite, day_of(20)) == []

    later = suite.invoke("LakeCompactionFunction", SCHEDULE)
    assert parquet_order_ids(suite, day_of(20)) == ["o-2"]
    assert later["markers"] == 1
    assert markers(suite) == {}


def test_an_unreadable_marker_is_logged_and_removed_and_never_stops_the_run(
    suite: Suite, caplog: pytest.LogCaptureFixture
) -> None:
    cid = new_customer(suite)
    fold(suite, paid(cid, "o-1", "5.00", days_ago(10)))
    for name, body in (("broken", b"{not json"), ("no-days", b'{"days": ["someday"]}')):
        aws.s3().put_object(Bucket=bucket(suite), Key=f"{LATE_PREFIX}{name}.json", Body=body)
    done = suite.invoke("LakeCompactionFunction", SCHEDULE)
    assert done["markers"] == 3
    assert parquet_order_ids(suite, day_of(10)) == ["o-1"]
    assert markers(suite) == {}
    logged = [r for r in caplog.records if r.getMessage().startswith("lake late-day marker")]
    assert sorted(r.__dict__["key"] for r in logged) == [
        f"{LATE_PREFIX}broken.json",
        f"{LATE_PREFIX}no-days.json",
    ]
    assert all("not json" not in str(r.__dict__) for r in logged)  # keys, not bodies
    assert all("someday" not in str(r.__dict__) for r in logged)


def test_a_backfill_compacts_the_days_asked_and_leaves_the_markers(suite: Suite) -> None:
    cid = new_customer(suite)
    fold(suite, paid(cid, "o-1", "5.00", days_ago(10)), paid(cid, "o-2", "5.00", days_ago(12)))
    done = suite.invoke("LakeCompactionFunction", {**SCHEDULE, "days": [day_of(12)]})
    assert (done["days"], done["markers"]) == ([day_of(12)], 0)
    assert parquet_order_ids(suite, day_of(12)) == ["o-2"]
    assert len(markers(suite)) == 1  # for the nightly run, which compacts day 10 as well


def test_requests_of_a_nightly_run_with_markers(suite: Suite) -> None:
    lake = Lake(bucket(suite))
    body = json.dumps({"days": [day_of(30)], "tables": ["events"]}).encode()
    for n in range(DELETE_MAX + 1):
        lake.write(f"{LATE_PREFIX}b-{n:04d}.json", body, "application/json")
    with count_requests() as counts:
        done = suite.invoke("LakeCompactionFunction", SCHEDULE)
    assert done["markers"] == DELETE_MAX + 1
    assert done["days"] == [day_of(30), day_of(2), day_of(1)]  # each day compacted once
    assert counts["s3.DeleteObjects"] == 2  # at most 1,000 keys a call
    assert counts["s3.GetObject"] == DELETE_MAX + 1  # each marker read once
    assert "s3.DeleteObject" not in counts
    assert markers(suite) == {}


# ---------------------------------------------------------------------- IAM, exactly
def lake_grants(suite: Suite, function: str) -> set[Grant]:
    return {g for g in granted(suite, function) if g[1].startswith(bucket(suite))}


def test_the_lake_calls_of_the_fold_and_the_compaction_are_granted_and_nothing_broader(
    suite: Suite,
) -> None:
    """Every S3 call the two functions make on the lake is granted by template.yaml (AWS would
    refuse it otherwise), and the markers' grants are each used."""
    used: dict[str, set[Grant]] = {FOLD: set(), COMPACTION: set()}
    current: set[Grant] | None = None
    invoke = suite.invoke

    def spying(function: str, event: dict[str, Any]) -> Any:
        nonlocal current
        outer, current = current, used.get(function)
        try:
            return invoke(function, event)
        finally:
            current = outer

    def on_call(model: Any, params: dict[str, Any], **_: Any) -> None:
        if current is not None and params.get("Bucket") == bucket(suite):
            current.update(_needed("s3", model.name, params))

    cid = new_customer(suite)
    client = aws.client_for("s3")
    client.meta.events.register("provide-client-params.s3", on_call, unique_id="lake-spy")
    suite.invoke = spying  # type: ignore[method-assign]
    try:
        fold(suite, paid(cid, "o-1", "5.00", days_ago(10)), paid(cid, "o-2", "5.00", days_ago(0)))
        suite.invoke(COMPACTION, SCHEDULE)
    finally:
        suite.invoke = invoke  # type: ignore[method-assign]
        client.meta.events.unregister("provide-client-params.s3", unique_id="lake-spy")

    for function, needs in used.items():
        grants = lake_grants(suite, function)
        missing = {n for n in needs if not any(_covers(g, n) for g in grants)}
        assert missing == set(), f"{function} is refused {missing}"
    late = f"{bucket(suite)}/{LATE_PREFIX}*"
    assert lake_grants(suite, FOLD) == {
        ("s3:PutObject", f"{bucket(suite)}/events/*"),
        ("s3:PutObject", late),
    }
    assert {g for g in lake_grants(suite, COMPACTION) if g[1] == late} == {
        ("s3:GetObject", late),
        ("s3:DeleteObject", late),
    }
    for grant in (*lake_grants(suite, FOLD), ("s3:GetObject", late), ("s3:DeleteObject", late)):
        assert any(_covers(grant, n) for n in used[FOLD] | used[COMPACTION]), grant
    assert ("s3:ListBucket", bucket(suite)) in used[COMPACTION]  # the markers are listed
