"""Dispatch's items in CampaignsTable: the ledger (MSG#), the caps (CAP#), the counters
(STATS#), the last touches (TOUCH#), the policy and the recording provider's outbox (OUTBOX#).

The only code of dispatch that touches boto3. Every state change of a message is conditional on
the state it was read in, so two workers, a redelivery or a re-run after a crash can never
both move it (docs/campaigns.md, "exactly once")."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from crm import aws
from crm.campaigns.models import (
    BROKEN_DOWN,
    DispatchCounts,
    DispatchOutcome,
    DispatchRequest,
    Touch,
)
from crm.campaigns.policy import CapState, ContactPolicy, StoredPolicy
from crm.campaigns.records import (
    NO_VARIANT,
    POLICY_KEY,
    STATS_SHARDS,
    cap_key,
    message_key,
    outbox_key,
    owned_by,
    stats_partition,
    stats_shard,
    template_key,
    touch_key,
)
from crm.clock import iso
from crm.dynamo import batch_get, from_item, to_item
from crm.models import Record

MessageState = Literal[
    "deferred",  # waiting for its timer (quiet hours, a cap)
    "sending",  # claimed, the provider may have been called: only the lease holder moves it
    "unsent",  # claimed, and the provider provably did not take it: the next run may send
    "sent", "capped", "suppressed", "failed",  # final: the outcome is answered ever after
]  # fmt: skip
FINAL_STATES = frozenset({"sent", "capped", "suppressed", "failed"})
# The counters of a campaign's STATS# items (beside them: each reason's, `suppressed.<reason>`).
COUNTERS = ("sent", "capped", "deferred", "suppressed", "failed", "cost_micros")
# How long the ledger answers a redelivered or retried request with its first outcome.
LEDGER_RETENTION = timedelta(days=180)
# The caps' item outlives the longest window it counts (a week, the rolling window).
CAP_RETENTION = timedelta(days=21)


class MessageRecord(Record):
    """One message of the ledger, keyed by the hash of its dispatch key."""

    digest: str
    state: MessageState
    request: DispatchRequest
    outcome: DispatchOutcome | None = None
    attempt: int = Field(default=0, description="deferrals so far: names the current timer")
    lease: str | None = None
    lease_until: datetime | None = None
    cost_micros: int = 0
    slot_at: datetime | None = Field(
        default=None, description="when it took its slot under the caps (marketing); None: none"
    )
    slot_zone: str | None = Field(default=None, description="the zone its day and week were in")
    updated_at: datetime


@dataclass(frozen=True)
class Prior:
    """The state a message is moved from: None (new), or a stored state and its version."""

    state: MessageState
    attempt: int = 0
    lease: str | None = None


class CapsMoved(Exception):
    """Another message of the customer took a slot since the caps were read: read again."""


def _condition(prior: Prior | None) -> tuple[str, dict[str, Any]]:
    if prior is None:
        return "attribute_not_exists(PK)", {}
    if prior.state == "deferred":
        return "#s = :prior AND attempt = :attempt", {
            ":prior": "deferred",
            ":attempt": prior.attempt,
        }
    return "#s = :prior AND lease = :lease", {":prior": prior.state, ":lease": prior.lease}


def _canceled(exc: Exception) -> list[str]:
    """The cancellation reason of each item of a cancelled transaction ([] if not one)."""
    if aws.failed_call_code(exc) != "TransactionCanceledException":
        return []
    response: dict[str, Any] = getattr(exc, "response", {})
    return [str(r.get("Code", "None")) for r in response.get("CancellationReasons", [])]


class DispatchStore:
    def __init__(self, table: str) -> None:
        self._table = table

    # ------------------------------------------------------------------ reading
    def read(self, digest: str, customer_id: str | None) -> tuple[MessageRecord | None, CapState]:
        """The message and (for a customer) the caps, in one strongly consistent read."""
        keys = [to_item(message_key(digest))]
        if customer_id is not None:
            keys.append(to_item(cap_key(customer_id)))
        message, caps = None, CapState()
        for raw in batch_get(self._table, keys):
            item = from_item(raw)
            if item["PK"].startswith("MSG#"):
                message = MessageRecord.model_validate_json(item["body"])
            else:
                caps = CapState.model_validate_json(item["body"])
        return message, caps

    def message(self, digest: str) -> MessageRecord | None:
        return self.read(digest, None)[0]

    def caps(self, customer_id: str) -> CapState:
        """A customer's cap counters alone (a send's preview), in one strongly consistent read."""
        got = aws.dynamodb().get_item(TableName=self._table, Key=to_item(cap_key(customer_id)),
                                      ConsistentRead=True).get("Item")  # fmt: skip
        return CapState() if got is None else CapState.model_validate_json(from_item(got)["body"])

    # ------------------------------------------------------------------ writing
    def _message_put(self, record: MessageRecord, prior: Prior | None) -> dict[str, Any]:
        condition, values = _condition(prior)
        item = {
            **message_key(record.digest),
            **owned_by(record.request.customer_id),
            "state": record.state,
            "attempt": record.attempt,
            "lease": record.lease,
            "lease_until": iso(record.lease_until) if record.lease_until else None,
            "body": record.model_dump_json(),
            "expires_at": int((record.updated_at + LEDGER_RETENTION).timestamp()),
        }
        put: dict[str, Any] = {
            "TableName": self._table, "Item": to_item(item), "ConditionExpression": condition,
        }  # fmt: skip
        if values:
            put["ExpressionAttributeNames"] = {"#s": "state"}
            put["ExpressionAttributeValues"] = to_item(values)
        return {"Put": put}

    def _stats_update(self, record: MessageRecord, delta: Mapping[str, int]) -> dict[str, Any]:
        request = record.request
        # Placeholders by position: a reason's counter ('suppressed.no_address') is no name.
        names = {f"#c{n}": name for n, name in enumerate(delta)}
        values = {f":c{n}": value for n, value in enumerate(delta.values())}
        return {
            "Update": {
                "TableName": self._table,
                "Key": to_item(
                    {
                        "PK": stats_partition(request.campaign_id, stats_shard(record.digest)),
                        "SK": request.variant or NO_VARIANT,
                    }
                ),
                "UpdateExpression": "ADD " + ", ".join(f"#c{n} :c{n}" for n in range(len(delta))),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": to_item(values),
            }
        }

    def _caps_put(self, customer_id: str, caps: CapState, now: datetime) -> dict[str, Any]:
        item = {
            **cap_key(customer_id),
            **owned_by(customer_id),
            "version": caps.version,
            "body": caps.model_dump_json(),
            "expires_at": int((now + CAP_RETENTION).timestamp()),
        }
        condition = "attribute_not_exists(PK)" if caps.version == 1 else "version = :v"
        put: dict[str, Any] = {
            "TableName": self._table, "Item": to_item(item), "ConditionExpression": condition,
        }  # fmt: skip
        if caps.version > 1:
            put["ExpressionAttributeValues"] = to_item({":v": caps.version - 1})
        return {"Put": put}

    def _transact(self, operations: Sequence[dict[str, Any]]) -> list[str]:
        """[] when committed; else each item's cancellation reason."""
        try:
            aws.dynamodb().transact_write_items(TransactItems=list(operations))  # type: ignore[arg-type]
        except Exception as exc:
            reasons = _canceled(exc)
            if not reasons:
                raise
            return reasons
        return []

    def record(
        self,
        record: MessageRecord,
        prior: Prior | None,
        stats: Mapping[str, int],
        extra: Sequence[dict[str, Any]] = (),
    ) -> bool:
        """Store the message in its new state with its counters, if it is still in `prior`
        (False: another worker moved it first). `extra`: items of another part that must
        commit with it (the timer's claim)."""
        operations = [self._message_put(record, prior)]
        if stats:
            operations.append(self._stats_update(record, stats))
        return not self._transact([*operations, *extra])

    def claim(
        self,
        record: MessageRecord,
        prior: Prior | None,
        caps: CapState | None,
        stats: Mapping[str, int],
        extra: Sequence[dict[str, Any]] = (),
        caps_owner: str | None = None,
    ) -> bool:
        """Claim the message for sending and take its slot under the caps in one transaction.
        False: the message was claimed or moved by another worker; CapsMoved: the caps changed
        since they were read (read them again and decide again)."""
        operations = [self._message_put(record, prior)]
        if caps is not None:
            owner = caps_owner or record.request.customer_id
            operations.append(self._caps_put(owner, caps, record.updated_at))
        if stats:
            operations.append(self._stats_update(record, stats))
        reasons = self._transact([*operations, *extra])
        if not reasons:
            return True
        if reasons[0] == "ConditionalCheckFailed":
            return False
        if caps is not None and reasons[1] == "ConditionalCheckFailed":
            raise CapsMoved(record.request.customer_id)
        return False  # the timer's claim (extra) failed: a duplicate wake-up

    def put_caps(self, customer_id: str, caps: CapState, now: datetime) -> bool:
        """Write the caps if they are still at the version before `caps` (False: they moved)."""
        put = self._caps_put(customer_id, caps, now)["Put"]
        try:
            aws.dynamodb().put_item(**put)
        except Exception as exc:
            if aws.failed_call_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def touch(self, customer_id: str, touch: Touch) -> None:
        """The customer's last marketing message on the channel, unless a newer one is there
        (a message deferred for a day may finish after a later one)."""
        item = {
            **touch_key(customer_id, touch.channel),
            **owned_by(customer_id),
            **touch.model_dump(mode="json"),
        }
        try:
            aws.dynamodb().put_item(
                TableName=self._table,
                Item=to_item(item),
                ConditionExpression="attribute_not_exists(sent_at) OR sent_at <= :t",
                ExpressionAttributeValues=to_item({":t": item["sent_at"]}),
            )
        except Exception as exc:
            if aws.failed_call_code(exc) != "ConditionalCheckFailedException":
                raise

    # ------------------------------------------------------------------ what S reads
    def campaign_counts(self, campaign_id: str) -> dict[str, DispatchCounts]:
        """Counters by variant (`-` for none), summed over the write shards."""
        totals: dict[str, dict[str, int]] = {}
        reasons: dict[str, dict[str, dict[str, int]]] = {}  # variant -> status -> reason -> n
        client = aws.dynamodb()
        for shard in range(STATS_SHARDS):
            pages = client.get_paginator("query").paginate(
                TableName=self._table,
                KeyConditionExpression="PK = :pk",
                ExpressionAttributeValues=to_item({":pk": stats_partition(campaign_id, shard)}),
            )
            for page in pages:
                for raw in page["Items"]:
                    item = from_item(raw)
                    into = totals.setdefault(item["SK"], {})
                    for name in COUNTERS:
                        into[name] = into.get(name, 0) + int(item.get(name, 0))
                    by = reasons.setdefault(item["SK"], {})
                    for name, value in item.items():
                        status, dot, reason = str(name).partition(".")
                        if dot and status in BROKEN_DOWN:
                            into_status = by.setdefault(status, {})
                            into_status[reason] = into_status.get(reason, 0) + int(value)
        return {
            variant: DispatchCounts(
                **counts,
                suppressed_by=reasons.get(variant, {}).get("suppressed", {}),
                capped_by=reasons.get(variant, {}).get("capped", {}),
            )
            for variant, counts in totals.items()
        }

    def last_touches(self, customer_id: str) -> list[Touch]:
        out = aws.dynamodb().query(
            TableName=self._table,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues=to_item({":pk": f"TOUCH#{customer_id}"}),
        )
        touches = []
        for raw in out["Items"]:
            item = from_item(raw)
            touches.append(Touch.model_validate({k: v for k, v in item.items()
                                                 if k in Touch.model_fields}))  # fmt: skip
        return touches

    # ------------------------------------------------------------------ the policy
    def policy(self) -> StoredPolicy | None:
        got = aws.dynamodb().get_item(TableName=self._table, Key=to_item(POLICY_KEY),
                                      ConsistentRead=True).get("Item")  # fmt: skip
        if got is None:
            return None
        return StoredPolicy.model_validate_json(from_item(got)["body"])

    def save_policy(self, stored: StoredPolicy) -> None:
        aws.dynamodb().put_item(
            TableName=self._table,
            Item=to_item({**POLICY_KEY, "body": stored.model_dump_json()}),
        )

    # ------------------------------------------------------------------ the outbox
    def outbox_put(
        self, customer_id: str, digest: str, entry: Mapping[str, Any], expires_at: datetime
    ) -> dict[str, Any]:
        """Put the entry unless one is there for this message: returns the stored entry."""
        item = {**outbox_key(customer_id, digest), **owned_by(customer_id),
                "body": json.dumps(entry, sort_keys=True),
                "expires_at": int(expires_at.timestamp())}  # fmt: skip
        try:
            aws.dynamodb().put_item(TableName=self._table, Item=to_item(item),
                                    ConditionExpression="attribute_not_exists(PK)")  # fmt: skip
        except Exception as exc:
            if aws.failed_call_code(exc) != "ConditionalCheckFailedException":
                raise
            got = aws.dynamodb().get_item(TableName=self._table,
                                          Key=to_item(outbox_key(customer_id, digest)),
                                          ConsistentRead=True)["Item"]  # fmt: skip
            stored: dict[str, Any] = json.loads(from_item(got)["body"])
            return stored
        return dict(entry)

    def outbox(self, customer_id: str) -> list[dict[str, Any]]:
        client = aws.dynamodb()
        entries: list[dict[str, Any]] = []
        for page in client.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues=to_item({":pk": f"OUTBOX#{customer_id}"}),
        ):
            entries.extend(json.loads(from_item(raw)["body"]) for raw in page["Items"])
        return entries

    def policy_or_default(self) -> ContactPolicy:
        stored = self.policy()
        return stored.policy if stored else ContactPolicy()

    # ------------------------------------------------------------------ push endpoints
    def endpoint_arn(self, app_user_id: str) -> str | None:
        """The SNS platform endpoint the app's backend registered for an app user
        (`PUSH#<app user id>`, attribute `endpoint_arn`)."""
        got = aws.dynamodb().get_item(TableName=self._table,
                                      Key=to_item({"PK": f"PUSH#{app_user_id}", "SK": "ENDPOINT"}),
                                      ).get("Item")  # fmt: skip
        return None if got is None else str(from_item(got).get("endpoint_arn") or "") or None

    # ------------------------------------------------------------------ templates
    def template(self, template_id: str) -> str | None:
        """A stored template's JSON, or None."""
        got = aws.dynamodb().get_item(TableName=self._table, Key=to_item(template_key(template_id)),
                                      ConsistentRead=True).get("Item")  # fmt: skip
        return None if got is None else str(from_item(got)["body"])

    def save_template(self, template_id: str, body: str) -> None:
        aws.dynamodb().put_item(
            TableName=self._table, Item=to_item({**template_key(template_id), "body": body})
        )
