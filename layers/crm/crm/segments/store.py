"""DynamoDB access for segments (table `SegmentsTable`) and the fitted models (S3).

definition     PK=DEF                 SK=<name>        description, rule, paused, updated_at/by,
                                                       created_at
run            PK=RUN                 SK=<run_id>      status, times, progress counters, error,
                                                       run_notice (a run kept in legacy layout)
shard result   PK=RUN#<run_id>        SK=SHARD#<n>     members per segment, scored, written;
                                                       while unfinished (state=partial) the
                                                       scan's resume key, checkpointed
complete run   PK=SIZES               SK=<run_id>      finished_at, members per segment
membership     PK=SEG#<name>#<k>      SK=<customer_id> k = one of MEMBER_SHARDS write shards;
                                                       rule segments only (tiers and RFM cells
                                                       are listed by CustomersTable's member
                                                       indexes), plus legacy computed ones an
                                                       older version wrote (and a run of this
                                                       one while a member index is not ACTIVE),
                                                       until a run of this one deletes them
layout         PK=LAYOUT              SK=computed-members  written when the first run of this
                                                       version that moved them (both member
                                                       indexes ACTIVE) completed: computed
                                                       segments' members are indexed, legacy
                                                       items gone
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from crm import aws
from crm.dynamo import (
    ShardedStart,
    batch_write,
    from_item,
    sharded_page,
    to_item,
)
from crm.errors import InvalidInput, validation_problems
from crm.profiles import MEMBER_SHARDS, member_shard
from crm.segments.records import (
    CompleteRun,
    MembershipChange,
    RunRecord,
    ShardCheckpoint,
    UnreadableDefinition,
)

if TYPE_CHECKING:
    from crm.segments.fitted import SegmentModel
    from crm.segments.models import StoredDefinition

PARTIAL = "partial"  # a shard item's state until the shard is done (done items have none)

_LAYOUT_KEY = {"PK": {"S": "LAYOUT"}, "SK": {"S": "computed-members"}}


def _run_key(run_id: str) -> dict[str, Any]:
    return {"PK": {"S": "RUN"}, "SK": {"S": run_id}}


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _run(v: dict[str, Any]) -> RunRecord:
    return RunRecord(
        run_id=v["run_id"],
        status=v["status"],
        started_at=datetime.fromisoformat(v["started_at"]),
        total_segments=int(v.get("shards_total", 0)),
        shards_done=int(v.get("shards_counted", 0)),
        scored=int(v.get("profiles_scored", 0)),
        written=int(v.get("profiles_written", 0)),
        retried=int(v.get("attempts_retried", 0)),
        progress_at=_time(v.get("progress_at")),
        queued_at=_time(v.get("queued_at")),
        deadline_at=_time(v.get("deadline_at")),
        finished_at=_time(v.get("finished_at")),
        error=v.get("error"),
        notice=v.get("run_notice"),
        sizes={k: int(n) for k, n in v.get("sizes", {}).items()},
    )


class SegmentStore:
    def __init__(self, table: str) -> None:
        self._table = table

    # ------------------------------------------------------------ definitions
    def put_definition(self, definition: StoredDefinition, paused: bool | None) -> StoredDefinition:
        """Write a definition whole; `paused=None` keeps a replaced definition's state (a
        new one starts active). Returns what is stored. A replaced definition keeps when it
        was created (one written before this was kept takes the time of its first replacement)."""
        values = definition.model_dump(mode="json", exclude={"name", "paused", "created_at"})
        names = {f"#{k}": k for k in values}
        assignments = [f"#{k} = :{k}" for k in values]
        given = {f":{k}": v for k, v in values.items()}
        assignments.append("created_at = if_not_exists(created_at, :created_at)")
        given[":created_at"] = (definition.created_at or definition.updated_at).isoformat()
        if paused is None:
            assignments.append("paused = if_not_exists(paused, :paused)")
            given[":paused"] = False
        else:
            assignments.append("paused = :paused")
            given[":paused"] = paused
        out = aws.dynamodb().update_item(
            TableName=self._table,
            Key=_definition_key(definition.name),
            UpdateExpression="SET " + ", ".join(assignments),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item(given),
            ReturnValues="ALL_NEW",
        )
        from crm.segments.models import StoredDefinition

        return StoredDefinition.model_validate(_definition_values(out["Attributes"]))

    def set_paused(self, name: str, paused: bool, at: datetime, by: str) -> bool | None:
        """Whether the definition was paused before this change (read in the same write: of
        two racing resumes, one sees it paused); None when no such definition is stored."""
        try:
            out = aws.dynamodb().update_item(
                TableName=self._table,
                Key=_definition_key(name),
                UpdateExpression="SET paused = :paused, updated_at = :at, updated_by = :by",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeValues=to_item(
                    {":paused": paused, ":at": at.isoformat(), ":by": by}
                ),
                ReturnValues="UPDATED_OLD",
            )
        except aws.dynamodb().exceptions.ConditionalCheckFailedException:
            return None
        return bool(out.get("Attributes", {}).get("paused", {}).get("BOOL", False))

    def delete_definition(self, name: str) -> bool:
        """False when no such definition is stored."""
        out = aws.dynamodb().delete_item(
            TableName=self._table, Key=_definition_key(name), ReturnValues="ALL_OLD"
        )
        return bool(out.get("Attributes"))

    def definition(self, name: str) -> StoredDefinition | UnreadableDefinition | None:
        out = aws.dynamodb().get_item(
            TableName=self._table, Key=_definition_key(name), ConsistentRead=True
        )
        return _read_definition(out["Item"]) if "Item" in out else None

    def definitions(self) -> list[StoredDefinition | UnreadableDefinition]:
        """Every stored definition; one this version cannot read comes back as such, so it
        never keeps the others from being evaluated."""
        return [_read_definition(item) for item in self._query_all("DEF")]

    # ------------------------------------------------------------ runs
    def create_run(self, run_id: str, started_at: datetime) -> None:
        item = {"PK": "RUN", "SK": run_id, "run_id": run_id, "status": "planned",
                "started_at": started_at.isoformat()}  # fmt: skip
        aws.dynamodb().put_item(
            TableName=self._table,
            Item=to_item(item),
            ConditionExpression="attribute_not_exists(PK)",
        )

    def claim_run(self, run_id: str, at: datetime) -> bool:
        """A planner takes a requested run; False when another delivery of the request took
        it already or the run ended meanwhile."""
        return self._update_if(
            run_id,
            "SET claimed_at = :at",
            "#s = :planned AND attribute_not_exists(claimed_at)",
            {":at": at.isoformat(), ":planned": "planned"},
        )

    def start_run(
        self, run_id: str, shards: int, deadline_at: datetime, at: datetime,
        notice: str | None = None,
    ) -> bool:  # fmt: skip
        """planned -> running with its number of shards (and what the planner wants operators
        to know about it); False when the run is no longer planned (the watchdog gave up on a
        planner that took too long)."""
        values = {":running": "running", ":shards": shards, ":deadline": deadline_at.isoformat(),
                  ":at": at.isoformat(), ":planned": "planned"}  # fmt: skip
        update = (
            "SET #s = :running, shards_total = :shards, deadline_at = :deadline, "
            "progress_at = :at, queued_at = :at"
        )
        if notice is not None:
            update += ", run_notice = :notice"
            values[":notice"] = notice
        return self._update_if(run_id, update, "#s = :planned", values)

    def record_shard(
        self, run_id: str, shard: int, counts: dict[str, int], scored: int, written: int,
        at: datetime,
    ) -> RunRecord:  # fmt: skip
        """Store one shard's result and count it once; returns the run as it now stands.

        The shard item is the truth and the run's counters follow it: they move only when
        the shard's result is stored for the first time (over no item, or over a checkpoint),
        so a retried shard counts once. The counters live on the small run item, not in a
        set of shard numbers, because a set of thousands of shards would make every one of
        thousands of updates cost its whole size on one hot item. Should an attempt stop
        between the two writes, the run is one short: the watchdog counts the shard items
        before it gives up on a run (`recorded_shards`)."""
        item = {"PK": f"RUN#{run_id}", "SK": f"SHARD#{shard:07d}", "counts": counts,
                "scored": scored, "written": written, "at": at.isoformat()}  # fmt: skip
        if not self._put_unfinished_shard(item):
            run = self.run(run_id, consistent=True)  # stored by an earlier attempt: counted then
            if run is None:
                raise KeyError(run_id) from None
            return run
        updated = aws.dynamodb().update_item(
            TableName=self._table,
            Key=_run_key(run_id),
            UpdateExpression="ADD shards_counted :one, profiles_scored :scored, "
            "profiles_written :written SET progress_at = :at",
            ConditionExpression="attribute_exists(PK)",
            ExpressionAttributeValues=to_item(
                {":one": 1, ":scored": scored, ":written": written, ":at": at.isoformat()}
            ),
            ReturnValues="ALL_NEW",
        )
        return _run(from_item(updated["Attributes"]))

    def checkpoint_shard(
        self, run_id: str, shard: int, checkpoint: ShardCheckpoint, at: datetime
    ) -> bool:
        """Keep how far an unfinished shard got (one PutItem on its shard item). False when
        the shard is done already (another attempt finished it): there is nothing to keep."""
        item = {"PK": f"RUN#{run_id}", "SK": f"SHARD#{shard:07d}", "state": PARTIAL,
                "resume": json.dumps(checkpoint.resume, sort_keys=True),
                "counts": checkpoint.counts, "scored": checkpoint.scored,
                "written": checkpoint.written, "skipped": checkpoint.skipped,
                "parts": checkpoint.parts, "at": at.isoformat()}  # fmt: skip
        return self._put_unfinished_shard(item)

    def _put_unfinished_shard(self, item: dict[str, Any]) -> bool:
        """Put a shard item unless the shard is done already (no item, or a partial one)."""
        try:
            aws.dynamodb().put_item(
                TableName=self._table,
                Item=to_item(item),
                ConditionExpression="attribute_not_exists(PK) OR #state = :partial",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":partial": {"S": PARTIAL}},
            )
        except aws.dynamodb().exceptions.ConditionalCheckFailedException:
            return False
        return True

    def shard_checkpoint(self, run_id: str, shard: int) -> ShardCheckpoint | None:
        """Where an earlier attempt of this shard stopped, if it checkpointed and did not
        finish."""
        out = aws.dynamodb().get_item(
            TableName=self._table,
            Key={"PK": {"S": f"RUN#{run_id}"}, "SK": {"S": f"SHARD#{shard:07d}"}},
            ConsistentRead=True,
        )
        if "Item" not in out:
            return None
        v = from_item(out["Item"])
        if v.get("state") != PARTIAL:
            return None
        return ShardCheckpoint(
            resume=json.loads(v["resume"]),
            counts={k: int(n) for k, n in v.get("counts", {}).items()},
            scored=int(v.get("scored", 0)),
            written=int(v.get("written", 0)),
            skipped=int(v.get("skipped", 0)),
            parts=int(v.get("parts", 0)),
        )

    def note_retry(self, run_id: str) -> None:
        """A shard attempt failed and SQS will deliver it again."""
        self._update_if(run_id, "ADD attempts_retried :one", "attribute_exists(PK)", {":one": 1})

    def finish_run(self, run_id: str, finished_at: datetime) -> bool:
        """running -> complete: sums the shards' sizes onto the run and keeps them, with the
        time, where the segment list reads complete runs only (PK=SIZES), so failed or running
        runs never push the last good sizes out of sight. False when the run was no longer
        running (finished by another worker, or failed)."""
        sizes: dict[str, int] = {}
        for item in self._query_all(f"RUN#{run_id}", consistent=True):
            if item.get("state", {}).get("S") == PARTIAL:
                continue  # a checkpoint, not a result
            for name, count in from_item(item).get("counts", {}).items():
                sizes[name] = sizes.get(name, 0) + int(count)
        at = finished_at.isoformat()
        try:
            aws.dynamodb().transact_write_items(
                TransactItems=[
                    {"Update": {
                        "TableName": self._table,
                        "Key": _run_key(run_id),
                        "UpdateExpression": "SET #s = :complete, finished_at = :at, "
                                            "sizes = :sizes",
                        "ConditionExpression": "#s = :running",
                        "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": to_item({
                            ":complete": "complete", ":at": at, ":sizes": sizes,
                            ":running": "running",
                        }),
                    }},
                    {"Put": {
                        "TableName": self._table,
                        "Item": to_item({"PK": "SIZES", "SK": run_id, "run_id": run_id,
                                         "finished_at": at, "sizes": sizes}),
                    }},
                ]
            )  # fmt: skip
        except ClientError as exc:
            if aws.error_code(exc) != "TransactionCanceledException":
                raise
            return False
        return True

    def fail_run(self, run_id: str, error: str, at: datetime) -> bool:
        """planned or running -> failed, with what went wrong; False when it had ended."""
        return self._update_if(
            run_id,
            "SET #s = :failed, finished_at = :at, #e = :error",
            "#s IN (:planned, :running)",
            {":failed": "failed", ":at": at.isoformat(), ":error": error,
             ":planned": "planned", ":running": "running"},
        )  # fmt: skip

    def recorded_shards(self, run_id: str) -> set[int]:
        """The shards whose results are stored (read only when a run looks stuck)."""
        items = self._query_all(f"RUN#{run_id}", consistent=True,
                                ProjectionExpression="SK, #state",
                                ExpressionAttributeNames={"#state": "state"})  # fmt: skip
        return {
            int(i["SK"]["S"].removeprefix("SHARD#"))
            for i in items
            if i.get("state", {}).get("S") != PARTIAL
        }

    def run(self, run_id: str, consistent: bool = False) -> RunRecord | None:
        out = aws.dynamodb().get_item(
            TableName=self._table, Key=_run_key(run_id), ConsistentRead=consistent
        )
        return _run(from_item(out["Item"])) if "Item" in out else None

    def runs(self, limit: int) -> list[RunRecord]:
        """The latest runs, newest first."""
        out = aws.dynamodb().query(
            TableName=self._table,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": {"S": "RUN"}},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [_run(from_item(i)) for i in out.get("Items", [])]

    def complete_runs(self, limit: int) -> list[CompleteRun]:
        """The latest complete runs' sizes, newest first."""
        out = aws.dynamodb().query(
            TableName=self._table,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": {"S": "SIZES"}},
            ScanIndexForward=False,
            Limit=limit,
        )
        found = []
        for item in out.get("Items", []):
            v = from_item(item)
            found.append(CompleteRun(run_id=v["run_id"],
                                     finished_at=datetime.fromisoformat(v["finished_at"]),
                                     sizes={k: int(n) for k, n in v["sizes"].items()}))  # fmt: skip
        return found

    def _update_if(self, run_id: str, update: str, condition: str, values: dict[str, Any]) -> bool:
        try:
            aws.dynamodb().update_item(
                TableName=self._table,
                Key=_run_key(run_id),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={
                    k: v for k, v in {"#s": "status", "#e": "error"}.items()
                    if k in update or k in condition
                },
                ExpressionAttributeValues=to_item(values),
            )  # fmt: skip
        except aws.dynamodb().exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _query_all(
        self, pk: str, consistent: bool = False, **extra: Any
    ) -> Iterable[dict[str, Any]]:
        params: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ConsistentRead": consistent,
            **extra,
        }
        while True:
            out = aws.dynamodb().query(**params)
            yield from out.get("Items", [])
            if "LastEvaluatedKey" not in out:
                return
            params["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    # ------------------------------------------------------------ memberships
    def computed_members_indexed(self) -> bool:
        """Whether a run of this version completed: every scored customer's scores item
        carries its computed segments' index keys and no legacy SEG# item of a tier or RFM
        cell is left. Until then those segments are listed from their legacy items."""
        out = aws.dynamodb().get_item(TableName=self._table, Key=_LAYOUT_KEY, ConsistentRead=True)
        return "Item" in out

    def mark_computed_members_indexed(self, run_id: str, at: datetime) -> None:
        item = {**_LAYOUT_KEY, **to_item({"run_id": run_id, "at": at.isoformat()})}
        aws.dynamodb().put_item(TableName=self._table, Item=item)

    @staticmethod
    def page_start(page_token: str | None) -> ShardedStart:
        """A member listing's page token, decoded once: it says which list continues (legacy
        SEG# items or a member index), and that list checks it against itself."""
        return ShardedStart.of(page_token)

    @staticmethod
    def legacy_start(start: ShardedStart) -> bool:
        """Whether a page continues a legacy listing (SEG# items, keyed PK and SK only): a
        listing that began before the upgrade run completed goes on where it began."""
        return isinstance(start.key, dict) and set(start.key) == {"PK", "SK"}

    def apply(self, changes: Sequence[MembershipChange]) -> None:
        requests: list[Any] = []
        for c in changes:
            key = {"PK": f"SEG#{c.segment}#{member_shard(c.customer_id):02d}", "SK": c.customer_id}
            if c.entered:
                requests.append({"PutRequest": {"Item": to_item(key)}})
            else:
                requests.append({"DeleteRequest": {"Key": to_item(key)}})
        batch_write(self._table, requests)

    def members(
        self, segment: str, limit: int, start: ShardedStart
    ) -> tuple[list[str], str | None]:
        """One page across the write shards, in shard order."""
        return sharded_page(
            self._table, MEMBER_SHARDS, lambda shard: ("PK", f"SEG#{segment}#{shard:02d}"),
            {"PK", "SK"}, lambda item: str(item["SK"]["S"]), limit, start,
        )  # fmt: skip


def _definition_key(name: str) -> dict[str, Any]:
    return {"PK": {"S": "DEF"}, "SK": {"S": name}}


def _definition_values(item: dict[str, Any]) -> dict[str, Any]:
    values = from_item(item)
    values["name"] = values.pop("SK")
    values.pop("PK", None)
    return values


def _read_definition(item: dict[str, Any]) -> StoredDefinition | UnreadableDefinition:
    # The rule grammar (the family's API models) is loaded by the first definition read, not
    # with the store: a profile write checks the rule segments through this store, and a
    # stack with none defined never needs it.
    from crm.segments.models import StoredDefinition

    values = _definition_values(item)
    try:
        return StoredDefinition.model_validate(values)
    except ValidationError as exc:
        problems = tuple(f"{p.field}: {p.message}" for p in validation_problems(exc))
        return UnreadableDefinition(
            name=str(values["name"]), paused=values.get("paused") is True, problems=problems
        )


class ModelStore:
    """Fitted models, one version per run, in the lake bucket under models/segments/."""

    def __init__(self, bucket: str) -> None:
        self._bucket = bucket
        self._cache: dict[str, SegmentModel] = {}

    @staticmethod
    def key(run_id: str) -> str:
        return f"models/segments/{run_id}.json"

    def put(self, model: SegmentModel) -> str:
        key = self.key(model.run_id)
        aws.s3().put_object(
            Bucket=self._bucket, Key=key, Body=model.model_dump_json().encode(),
            ContentType="application/json",
        )  # fmt: skip
        return key

    def get(self, run_id: str) -> SegmentModel:
        if run_id not in self._cache:
            try:
                body = aws.s3().get_object(Bucket=self._bucket, Key=self.key(run_id))["Body"]
            except aws.s3().exceptions.NoSuchKey:
                raise InvalidInput(f"no model stored for run {run_id}") from None
            # Loaded here, not with the store: the rule check of every profile write reaches
            # this module and never reads a fitted model.
            from crm.segments.fitted import SegmentModel

            self._cache[run_id] = SegmentModel.model_validate(json.loads(body.read()))
        return self._cache[run_id]
