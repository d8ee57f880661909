"""Segment runs report where they are and never stay `running` for ever: status and progress
through GET /segments/runs/{id} and GET /segments, a shard that keeps failing fails its run
naming the shard, and the watchdog ends a run nothing works on any more. Real handlers on
moto; time comes from a clock the test moves."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

from crm import composition
from crm.composition import Crm, Settings
from crm.profiles.store import ProfileStore
from crm.segments.recompute import MIN_SHARDS, ShardOutOfTime
from crm.segments.runs import SHARD_ATTEMPTS
from crm.segments.store import ModelStore
from crm.segments.transit import ShardTask
from crm_local.harness import Suite
from crm_local.template import ROOT
from tests.integration.segments.test_segments import SCHEDULE, SHARDS, load_shop

WATCHDOG = json.loads((ROOT / "events" / "schedule_segments_watchdog.json").read_text())
DLQ = "SegmentShardsDLQ"


class MovingClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **span: float) -> None:
        self.now += timedelta(**span)


@pytest.fixture
def clock(suite: Suite) -> MovingClock:
    moving = MovingClock()
    composition.reset(Crm(Settings.from_env(), clock=moving))
    return moving


@pytest.fixture
def shop(suite: Suite) -> dict[str, str]:
    return load_shop(suite, customers=12)


def plan(suite: Suite) -> dict[str, Any]:
    out: dict[str, Any] = suite.invoke("SegmentPlannerFunction", SCHEDULE)
    return out


def run_status(suite: Suite, run_id: str) -> dict[str, Any]:
    out = suite.call("GET", f"/segments/runs/{run_id}", role="analyst")
    assert out.status == 200
    body: dict[str, Any] = out.body
    return body


def shard_messages(suite: Suite) -> dict[int, dict[str, Any]]:
    """Every shard task waiting in the queue, by shard number (received, not yet settled)."""
    found: dict[int, dict[str, Any]] = {}
    while batch := suite.receive(SHARDS):
        for message in batch:
            found[json.loads(message["Body"])["segment"]] = message
    return found


def deliver_until_empty(suite: Suite, rounds: int = 50) -> int:
    """Deliver shard batches as the event source mapping would, failures coming back, until
    SQS has nothing left to deliver (what failed too often is in the dead-letter queue)."""
    deliveries = 0
    for _ in range(rounds):
        messages = suite.receive(SHARDS)
        if not messages:
            return deliveries
        suite.deliver("SegmentWorkerFunction", SHARDS, messages)
        deliveries += len(messages)
    raise AssertionError("the shard queue never emptied")


def test_a_run_reports_status_and_progress_while_the_last_complete_sizes_stay_listed(
    suite: Suite, shop: dict[str, str]
) -> None:
    first = plan(suite)
    assert first["shards"] == MIN_SHARDS  # a dozen customers still make several shards
    status = run_status(suite, first["run_id"])
    assert status["status"] == "running"
    assert status["progress"] == {"shards_total": MIN_SHARDS, "shards_done": 0,
                                  "profiles_scored": 0, "profiles_written": 0,
                                  "attempts_retried": 0}  # fmt: skip
    assert status["deadline_at"] > status["started_at"]
    assert status["error"] is None
    listing = suite.call("GET", "/segments", role="analyst").body
    assert listing["current_run"]["run_id"] == first["run_id"]
    assert listing["latest_run"] is None  # nothing complete yet

    messages = shard_messages(suite)
    assert sorted(messages) == list(range(MIN_SHARDS))  # each shard once
    half = [messages[n] for n in range(MIN_SHARDS // 2)]
    suite.deliver("SegmentWorkerFunction", SHARDS, half)
    midway = run_status(suite, first["run_id"])
    assert midway["status"] == "running"
    assert midway["progress"]["shards_done"] == MIN_SHARDS // 2
    rest = [messages[n] for n in range(MIN_SHARDS // 2, MIN_SHARDS)]
    suite.deliver("SegmentWorkerFunction", SHARDS, rest)

    done = run_status(suite, first["run_id"])
    assert done["status"] == "complete"
    assert done["finished_at"] is not None
    assert done["progress"]["shards_done"] == MIN_SHARDS
    scored = done["progress"]["profiles_scored"]
    assert scored == 12  # every live profile once
    assert 0 < done["progress"]["profiles_written"] <= scored  # the first scores are new
    listing = suite.call("GET", "/segments", role="analyst").body
    assert listing["latest_run"] == first["run_id"]
    assert listing["current_run"] is None
    sizes = {s["name"]: s["size"] for s in listing["segments"]}

    # A shard SQS delivers again after its run completed is skipped.
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=suite.queue_url(SHARDS), MessageBody=messages[0]["Body"])
    assert deliver_until_empty(suite) == 1
    assert run_status(suite, first["run_id"]) == done

    # A second run in progress: the list keeps the first run's sizes and shows the second.
    second = plan(suite)
    listing = suite.call("GET", "/segments", role="analyst").body
    assert listing["latest_run"] == first["run_id"]
    assert {s["name"]: s["size"] for s in listing["segments"]} == sizes
    assert None not in sizes.values()
    assert listing["current_run"]["run_id"] == second["run_id"]
    assert listing["current_run"]["status"] == "running"
    deliver_until_empty(suite)
    assert run_status(suite, second["run_id"])["progress"]["profiles_scored"] == scored
    listing = suite.call("GET", "/segments", role="analyst").body
    assert listing["latest_run"] == second["run_id"]
    assert [len(s["trend"]) for s in listing["segments"]] == [2] * len(listing["segments"])


def failed_run_metrics(out: str) -> list[float]:
    """The SegmentRunsFailed values the functions emitted (EMF lines on stdout)."""
    lines = [json.loads(line) for line in out.splitlines() if '"SegmentRunsFailed"' in line]
    return [value for line in lines for value in line["SegmentRunsFailed"]]


def test_a_shard_that_keeps_failing_fails_the_run_naming_the_shard_not_the_data(
    suite: Suite,
    shop: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    original = ProfileStore.scan_scoring

    def flaky(self: ProfileStore, segment: int, total: int, *args: Any, **kwargs: Any) -> Any:
        if (segment, total) == (2, MIN_SHARDS):  # a worker's shard 2, not the planner's sample
            # The text may hold anything (here a phone number); the run must not repeat it.
            raise ReadTimeoutError(endpoint_url="https://customer-13812345678.example")
        return original(self, segment, total, *args, **kwargs)

    monkeypatch.setattr(ProfileStore, "scan_scoring", flaky)
    run_id = plan(suite)["run_id"]
    deliveries = deliver_until_empty(suite)
    assert deliveries == MIN_SHARDS - 1 + SHARD_ATTEMPTS  # shard 2 three times, then no more

    status = run_status(suite, run_id)
    assert status["status"] == "failed"
    assert status["error"] == f"shard 2 of {MIN_SHARDS} failed 3 times: ReadTimeoutError"
    assert "13812345678" not in json.dumps(status)
    assert status["progress"]["shards_done"] == MIN_SHARDS - 1
    assert status["progress"]["attempts_retried"] == SHARD_ATTEMPTS - 1
    assert status["finished_at"] is not None
    dead = suite.receive(DLQ)
    assert [json.loads(m["Body"])["segment"] for m in dead] == [2]
    listing = suite.call("GET", "/segments", role="analyst").body
    assert listing["current_run"]["status"] == "failed"
    assert listing["latest_run"] is None
    assert failed_run_metrics(capsys.readouterr().out) == [1.0]  # once, for SegmentRunFailedAlarm


def test_a_poison_task_fails_its_run_at_once_and_late_shards_of_a_failed_run_do_nothing(
    suite: Suite, shop: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = plan(suite)["run_id"]
    sqs = boto3.client("sqs")
    wrong = ShardTask(run_id=run_id, segment=0, total_segments=99)  # not this run's shards
    sqs.send_message(QueueUrl=suite.queue_url(SHARDS), MessageBody=wrong.model_dump_json())
    messages = []
    while batch := suite.receive(SHARDS):
        messages += batch
    poison = next(m for m in messages if json.loads(m["Body"])["total_segments"] == 99)
    messages.remove(poison)
    suite.deliver("SegmentWorkerFunction", SHARDS, [poison])
    status = run_status(suite, run_id)
    assert status["status"] == "failed"
    assert status["error"] == (
        "shard 0 of 99 cannot be scored: PoisonMessage (total_segments differs from the run's)"
    )
    suite.deliver("SegmentWorkerFunction", SHARDS, messages)
    after = run_status(suite, run_id)
    assert after["progress"]["shards_done"] == 0  # the run was over: nothing was scanned
    assert after["status"] == "failed"
    assert failed_run_metrics(capsys.readouterr().out) == [1.0]


def test_a_planner_that_fails_fails_its_run_and_queues_nothing(
    suite: Suite,
    shop: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def unavailable(self: ModelStore, model: Any) -> str:
        raise ReadTimeoutError(endpoint_url="https://s3.example")

    monkeypatch.setattr(ModelStore, "put", unavailable)
    with pytest.raises(ReadTimeoutError):
        plan(suite)
    current = suite.call("GET", "/segments", role="analyst").body["current_run"]
    assert current["status"] == "failed"
    assert current["error"] == "planning failed: ReadTimeoutError"
    assert current["progress"]["shards_total"] == 0
    assert suite.receive(SHARDS) == []
    assert failed_run_metrics(capsys.readouterr().out) == [1.0]


def test_a_shard_stops_itself_before_its_timeout_and_its_last_attempt_fails_the_run(
    suite: Suite, shop: dict[str, str]
) -> None:
    run_id = plan(suite)["run_id"]
    task = ShardTask(run_id=run_id, segment=5, total_segments=MIN_SHARDS).model_dump_json()
    worker = composition.root().segment_recompute
    with pytest.raises(ShardOutOfTime):
        worker.score_message(task, attempt=1, remaining_ms=lambda: 14_000)
    assert run_status(suite, run_id)["progress"]["attempts_retried"] == 1
    with pytest.raises(ShardOutOfTime):
        worker.score_message(task, attempt=SHARD_ATTEMPTS, remaining_ms=lambda: 14_000)
    status = run_status(suite, run_id)
    assert status["status"] == "failed"
    assert status["error"] == f"shard 5 of {MIN_SHARDS} failed 3 times: ShardOutOfTime"


def stuck_runs_reported(out: str) -> list[float]:
    """SegmentRunsStuck as the watchdog emitted it (CloudWatch's embedded metric format)."""
    found = []
    for line in out.splitlines():
        if '"_aws"' in line and "SegmentRunsStuck" in line:
            emitted = json.loads(line)
            assert emitted["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Crm"
            assert emitted["service"] == "crm-segment-watchdog"  # the alarm's dimension
            value = emitted["SegmentRunsStuck"]
            found.extend(value if isinstance(value, list) else [value])
    return found


def test_the_watchdog_fails_a_run_no_shard_moved_for_ten_minutes(
    suite: Suite, shop: dict[str, str], clock: MovingClock, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = plan(suite)["run_id"]
    messages = shard_messages(suite)
    lost = [messages.pop(3), messages.pop(6)]  # their worker crashed: no failure was recorded
    suite.deliver("SegmentWorkerFunction", SHARDS, list(messages.values()))
    for message in lost:  # as if SQS had moved them to the dead-letter queue
        boto3.client("sqs").delete_message(QueueUrl=suite.queue_url(SHARDS),
                                           ReceiptHandle=message["ReceiptHandle"])  # fmt: skip

    clock.advance(minutes=9)
    capsys.readouterr()
    assert suite.invoke("SegmentWatchdogFunction", WATCHDOG) == {"ended": []}
    assert stuck_runs_reported(capsys.readouterr().out) == [0]  # alive, nothing stuck
    assert run_status(suite, run_id)["status"] == "running"
    clock.advance(minutes=2)
    assert suite.invoke("SegmentWatchdogFunction", WATCHDOG) == {"ended": [run_id]}
    assert stuck_runs_reported(capsys.readouterr().out) == [1]  # SegmentRunStuckAlarm fires
    status = run_status(suite, run_id)
    assert status["status"] == "failed"
    assert status["error"] == (
        f"no shard finished for 11 minutes; shards not done: 3, 6 of {MIN_SHARDS} (a worker "
        "crashed or timed out: see the shard queue's dead-letter queue)"
    )
    clock.advance(minutes=5)
    assert suite.invoke("SegmentWatchdogFunction", WATCHDOG) == {"ended": []}  # once


def test_the_watchdog_fails_a_planner_that_never_queued_and_a_run_past_its_deadline(
    suite: Suite, clock: MovingClock
) -> None:
    store = composition.root().segment_store
    store.create_run("20261123T180000Z-crash0", clock())  # its planner timed out
    slow = plan(suite)["run_id"]
    deadline = datetime.fromisoformat(run_status(suite, slow)["deadline_at"])
    assert deadline == clock() + timedelta(minutes=2 * 2 + 3 * 3)
    messages = shard_messages(suite)
    # Shards keep finishing, just not all of them in time.
    for n in range(MIN_SHARDS - 1):
        clock.advance(minutes=1.5)
        suite.deliver("SegmentWorkerFunction", SHARDS, [messages[n]])
    assert clock() < deadline
    assert suite.invoke("SegmentWatchdogFunction", WATCHDOG) == {"ended": []}
    clock.advance(minutes=10)
    ended = suite.invoke("SegmentWatchdogFunction", WATCHDOG)["ended"]
    assert sorted(ended) == sorted([slow, "20261123T180000Z-crash0"])
    crashed = run_status(suite, "20261123T180000Z-crash0")
    assert crashed["status"] == "failed"
    assert crashed["error"] == "the planner did not queue the shards within 20 minutes"
    assert crashed["progress"]["shards_total"] == 0
    late = run_status(suite, slow)
    assert late["status"] == "failed"
    assert late["error"].startswith(f"not done by its deadline, {deadline:%Y-%m-%d %H:%M} UTC")
    assert late["error"].endswith(
        f"shards not done: 7 of {MIN_SHARDS} (a worker crashed or timed out: see the shard "
        "queue's dead-letter queue)"
    )


def test_the_watchdog_completes_a_run_whose_last_shard_was_stored_but_not_counted(
    suite: Suite, shop: dict[str, str], clock: MovingClock
) -> None:
    run_id = plan(suite)["run_id"]
    messages = shard_messages(suite)
    last = messages.pop(MIN_SHARDS - 1)
    suite.deliver("SegmentWorkerFunction", SHARDS, list(messages.values()))
    # The last shard's first attempt stored its result and stopped before counting it.
    store = composition.root().segment_store
    original = store.record_shard

    def crash_after_storing(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)
        raise ConnectionResetError

    store.record_shard = crash_after_storing  # type: ignore[method-assign]
    suite.deliver("SegmentWorkerFunction", SHARDS, [last])
    del store.record_shard
    boto3.client("dynamodb").update_item(  # undo the count the crash would have skipped
        TableName=suite.stack.refs["SegmentsTable"],
        Key={"PK": {"S": "RUN"}, "SK": {"S": run_id}},
        UpdateExpression="ADD shards_counted :minus",
        ExpressionAttributeValues={":minus": {"N": "-1"}},
    )
    deliver_until_empty(suite)  # the retry finds its result stored: counted once, not twice
    assert run_status(suite, run_id)["status"] == "running"
    assert run_status(suite, run_id)["progress"]["shards_done"] == MIN_SHARDS - 1

    clock.advance(minutes=11)
    assert suite.invoke("SegmentWatchdogFunction", WATCHDOG) == {"ended": [run_id]}
    status = run_status(suite, run_id)
    assert status["status"] == "complete"
    assert status["error"] is None
    listing = suite.call("GET", "/segments", role="analyst").body
    assert listing["latest_run"] == run_id
    assert sum(s["size"] for s in listing["segments"] if s["name"].startswith("tier:")) > 0


def test_run_routes_are_guarded_and_runs_is_not_a_segment_name(suite: Suite) -> None:
    assert suite.call("GET", "/segments/runs/20261123T180000Z-abcdef").status == 404
    assert suite.call("GET", "/segments/runs/" + "x" * 300).status == 404
    assert suite.call("GET", "/segments/runs/anything", role="support_agent").status == 403
    assert suite.call("GET", "/segments/runs/anything", role="marketer").status == 404
    reserved = {"name": "runs", "rule": {"all": [{"has_tag": "vip"}]}}
    out = suite.call("POST", "/segments", reserved)
    assert out.status == 400
    assert [f["field"] for f in out.body["error"]["fields"]] == ["name"]


def test_a_requested_run_answers_its_id_and_the_planner_claims_it_once(
    suite: Suite, shop: dict[str, str]
) -> None:
    tap = suite.tap_bus("run-requests", {"detail-type": ["SegmentRunRequested"]})
    asked = suite.call("POST", "/segments/runs")
    assert asked.status == 202
    run_id = asked.body["run_id"]
    assert f"/segments/runs/{run_id}" in asked.body["detail"]
    assert run_status(suite, run_id)["status"] == "planned"  # followable before the planner
    [request] = Suite.take_all(tap)
    assert request["detail"]["run_id"] == run_id

    # Asked again while it is under way: the same run, not a second one over its writes.
    again = suite.call("POST", "/segments/runs")
    assert again.status == 202
    assert (again.body["requested"], again.body["run_id"]) == (False, run_id)
    assert "a run is under way (planned)" in again.body["detail"]
    assert Suite.take_all(tap) == []

    planned: dict[str, Any] = suite.invoke("SegmentPlannerFunction", request)
    assert planned["run_id"] == run_id
    assert run_status(suite, run_id)["status"] == "running"
    # EventBridge delivers at least once: a second delivery plans nothing more.
    assert suite.invoke("SegmentPlannerFunction", request) == {"run_id": None}
    assert sorted(shard_messages(suite)) == list(range(planned["shards"]))  # queued once
    deliver_until_empty(suite)  # the received shards come back after their visibility
    assert run_status(suite, run_id)["status"] == "running"


def test_a_request_that_never_reaches_the_planner_fails_its_run(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = composition.root().segments

    def unreachable(events: object) -> None:
        raise EndpointConnectionError(endpoint_url="https://events.example")

    monkeypatch.setattr(catalog._bus, "publish", unreachable)
    refused = suite.call("POST", "/segments/runs")
    assert refused.status == 503  # busy or unreachable: the caller may try again
    run = suite.call("GET", "/segments", role="analyst").body["current_run"]
    assert (run["status"], run["error"]) == ("failed", "the request did not reach the planner")
