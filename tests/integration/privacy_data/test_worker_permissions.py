"""PrivacyWorkerFunction's IAM policy grants exactly what the registered stores and the
requests workflow use: every request kind (access, a dry run, an approved erasure, consent
withdrawal, rectification confirmed by the customer, restriction) and the deadline wake-ups run
through the worker on a seeded shop while every AWS call it makes is recorded as the IAM action
and resource it needs. The test fails when a call is not granted by template.yaml (AWS would
refuse it) and when the template grants a DynamoDB or S3 action on a table, index or object
prefix that no call used (a grant no store needs)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from crm import aws
from crm_local.harness import Suite
from crm_local.sqs import sqs_event
from tests.integration.privacy_data.conftest import World
from tests.integration.privacy_data.test_erasure import seeded_pair

WORKER = "PrivacyWorkerFunction"
# Key prefixes as the policy names them: an object's first path segment.
_STORAGE = ("dynamodb:", "s3:")

_TRANSACT = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
             "ConditionCheck": "ConditionCheckItem"}  # fmt: skip

Grant = tuple[str, str]  # (action, resource as the policy writes it, resolved to names)


def _tables(params: dict[str, Any]) -> set[str]:
    if "TableName" in params:
        index = params.get("IndexName")
        return {params["TableName"] + (f"/index/{index}" if index else "")}
    if "RequestItems" in params:
        return set(params["RequestItems"])
    if "TransactItems" in params:
        return {next(iter(t.values()))["TableName"] for t in params["TransactItems"]}
    return set()


def _needed(service: str, operation: str, params: dict[str, Any]) -> set[Grant]:
    """The IAM (action, resource) pairs one API call needs."""
    if service == "dynamodb":
        if operation == "TransactWriteItems":
            return {
                (f"dynamodb:{_TRANSACT[kind]}", spec["TableName"])
                for t in params["TransactItems"]
                for kind, spec in t.items()
            }
        return {(f"dynamodb:{operation}", t) for t in _tables(params)}
    if service == "s3":
        bucket = params["Bucket"]
        if operation == "ListObjectsV2":
            return {("s3:ListBucket", bucket)}
        action = {"HeadObject": "GetObject", "DeleteObjects": "DeleteObject"}.get(
            operation, operation
        )
        keys = (
            [o["Key"] for o in params["Delete"]["Objects"]]
            if operation == "DeleteObjects"
            else [params["Key"]]
        )
        return {(f"s3:{action}", f"{bucket}/{key}") for key in keys}
    return {(f"{service}:{operation}", "*")}


API = "ApiFunction"
AUDIT = "PrivacyAuditFunction"


@dataclass
class Used:
    """What each function needed: the worker's every invocation, the API's privacy routes."""

    worker: set[Grant] = field(default_factory=set)
    api: set[Grant] = field(default_factory=set)
    audit: set[Grant] = field(default_factory=set)  # the PII-read appender's invocations


@contextmanager
def recorded(suite: Suite) -> Iterator[Used]:
    """What the worker's invocations and the API's /privacy routes need, from their calls."""
    used = Used()
    current: set[Grant] | None = None
    invoke, call = suite.invoke, suite.call

    def spying(function: str, event: dict[str, Any]) -> Any:
        nonlocal current
        outer = current
        if function == WORKER:
            current = used.worker
        elif function == AUDIT:
            current = used.audit
        try:
            return invoke(function, event)
        finally:
            current = outer

    def calling(method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        nonlocal current
        outer = current
        if path.startswith("/privacy/"):
            current = used.api
        try:
            return call(method, path, *args, **kwargs)
        finally:
            current = outer

    def on_call(model: Any, params: dict[str, Any], **_: Any) -> None:
        if current is not None:
            current.update(_needed(model.service_model.service_name, model.name, params))

    clients = [aws.client_for(s) for s in aws.SERVICES] + [
        aws.client_for(s, bulk=True) for s in aws.BULK_SERVICES
    ]
    for client in clients:
        client.meta.events.register("provide-client-params", on_call, unique_id="iam-spy")
    suite.invoke = spying  # type: ignore[method-assign]
    suite.call = calling  # type: ignore[method-assign]
    try:
        yield used
    finally:
        suite.invoke, suite.call = invoke, call  # type: ignore[method-assign]
        for client in clients:
            client.meta.events.unregister("provide-client-params", unique_id="iam-spy")


def _resolve(suite: Suite, value: Any) -> list[str]:
    """A policy Resource (GetAtt X.Arn, Sub ${X.Arn}/..., lists) as table and bucket names."""
    if isinstance(value, list):
        return [r for v in value for r in _resolve(suite, v)]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        logical = target[0] if isinstance(target, list) else target.split(".")[0]
        return [str(suite.stack.refs[logical])]
    if isinstance(value, dict) and "Fn::Sub" in value:
        text = value["Fn::Sub"]
        for logical, ref in suite.stack.refs.items():
            text = text.replace("${" + logical + ".Arn}", str(ref))
        return [text]
    return [str(value)]


# SAM's policy templates, as their DynamoDB and S3 actions (the SAM policy templates list).
_DYNAMO_READ = ("GetItem", "Scan", "Query", "BatchGetItem", "DescribeTable")
_SAM_TABLE = {
    "DynamoDBCrudPolicy": (*_DYNAMO_READ, "DeleteItem", "PutItem", "UpdateItem",
                           "BatchWriteItem", "ConditionCheckItem"),
    "DynamoDBReadPolicy": _DYNAMO_READ,
}  # fmt: skip
_SAM_BUCKET = {
    "S3CrudPolicy": ("GetObject", "ListBucket", "PutObject", "DeleteObject"),
    "S3WritePolicy": ("PutObject",),
}


def _sam_grants(suite: Suite, name: str, args: dict[str, Any]) -> set[Grant]:
    if name in _SAM_TABLE:
        table = str(suite.stack.refs[args["TableName"]["Ref"]])
        return {(f"dynamodb:{a}", r) for a in _SAM_TABLE[name] for r in (table, f"{table}/*")}
    if name in _SAM_BUCKET:
        bucket = str(suite.stack.refs[args["BucketName"]["Ref"]])
        return {(f"s3:{a}", r) for a in _SAM_BUCKET[name] for r in (bucket, f"{bucket}/*")}
    return set()


def granted(suite: Suite, function: str = WORKER) -> set[Grant]:
    """A function's DynamoDB and S3 grants, as (action, table or bucket[/key pattern])."""
    spec = suite.stack.template.resources[function]["Properties"]
    grants: set[Grant] = set()
    for policy in spec["Policies"]:
        templates = [name for name in policy if name.startswith(("DynamoDB", "S3"))]
        if function in (WORKER, AUDIT):
            # A policy template grants every action of its kind: statements only.
            assert templates == [], f"a policy template grants more than stores use: {policy}"
        for name in templates:
            grants |= _sam_grants(suite, name, policy[name])
        for statement in policy.get("Statement", []):
            actions = statement["Action"]
            for action in [actions] if isinstance(actions, str) else actions:
                if action.startswith(_STORAGE):
                    grants.update((action, r) for r in _resolve(suite, statement["Resource"]))
    return grants


def _covers(grant: Grant, need: Grant) -> bool:
    return grant[0] == need[0] and fnmatch.fnmatchcase(need[1], grant[1])


@pytest.fixture
def used(world: World) -> Used:
    suite, shop = world.suite, world.shop
    alice, bob = seeded_pair(world)
    # She pays after the cart reminder: a conversion and its order claim, which erasure
    # keeps under an anonymous id and rewrites without her id (UpdateItem).
    shop.event(alice.customer_id, "order_paid")
    assert suite.drain("CampaignConversionsFunction", "ConversionsQueue") >= 1
    carol = world.customer("carol")

    filed: list[str] = []

    def file(cid: str, kind: str, **extra: Any) -> str:
        body = {"customer_id": cid, "kind": kind, **extra}
        reply = suite.call("POST", "/privacy/requests", body, role="customer", customer_id=cid)
        assert reply.status == 201, reply.body
        filed.append(str(reply.body["request_id"]))
        return filed[-1]

    def work() -> None:
        suite.drain(WORKER, "PrivacyQueue", rounds=50)

    with recorded(suite) as needed:
        access = file(alice.customer_id, "access")
        file(alice.customer_id, "erasure", dry_run=True)
        work()
        link = suite.call("GET", f"/privacy/requests/{access}/export", role="customer",
                          customer_id=alice.customer_id)  # fmt: skip
        assert link.status == 200, link.body
        rid = file(alice.customer_id, "erasure")
        approved = suite.call("POST", f"/privacy/requests/{rid}/approve",
                              {"reason": "verified_identity"}, role="privacy_officer")  # fmt: skip
        assert approved.status == 200, approved.body
        file(bob.customer_id, "consent_withdrawal")
        file(bob.customer_id, "restriction")
        # A new phone: the profile's transaction claims it and releases the old one.
        changes = {"name": "张小三", "phone": "+8613900009999"}
        rectify = {"customer_id": bob.customer_id, "kind": "rectification", "changes": changes}
        staff = suite.call("POST", "/privacy/requests", rectify, role="support_agent")
        assert staff.status == 201, staff.body
        filed.append(str(staff.body["request_id"]))
        confirmed = suite.call("POST", f"/privacy/requests/{staff.body['request_id']}/confirm",
                               None, role="customer", customer_id=bob.customer_id)  # fmt: skip
        assert confirmed.status == 200, confirmed.body
        work()
        file(carol.customer_id, "erasure")  # never approved: its deadline passes
        shop.advance(days=40)
        work()
        listed = suite.call("GET", "/privacy/requests", role="privacy_officer",
                            query={"status": "awaiting_approval"})  # fmt: skip
        assert [r["customer_id"] for r in listed.body["requests"]] == [carol.customer_id]
        chain = suite.call("GET", "/privacy/audit/verify", role="privacy_officer")
        assert chain.status == 200, chain.body
        assert chain.body["intact"] is True
        views = [
            suite.call("GET", f"/privacy/requests/{rid}", role="privacy_officer").body
            for rid in filed
        ]
    assert sum(v["status"] == "completed" for v in views) == 6, views
    assert any(v["deadline_missed"] for v in views), views
    return needed


def test_the_worker_is_granted_what_its_stores_use_and_nothing_more(
    world: World, used: Used
) -> None:
    grants = granted(world.suite)
    storage = {n for n in used.worker if n[0].startswith(_STORAGE)}
    refused = sorted(n for n in storage if not any(_covers(g, n) for g in grants))
    assert refused == [], f"the worker calls what its policy does not grant: {refused}"
    unused = sorted(g for g in grants if not any(_covers(g, n) for n in storage))
    assert unused == [], f"the worker's policy grants what no store uses: {unused}"
    # Beyond storage: its queue, the bus, the blind-index secret, the customers' data keys.
    others = {n[0] for n in used.worker if not n[0].startswith(_STORAGE)}
    assert others <= {"sqs:SendMessage", "sqs:SendMessageBatch", "events:PutEvents",
                      "kms:GenerateDataKey", "kms:Decrypt", "kms:Encrypt",
                      "secretsmanager:GetSecretValue"}, others  # fmt: skip


def test_the_apis_privacy_routes_are_granted_what_they_use(world: World, used: Used) -> None:
    """ApiFunction serves every family, so its grants are a union; the privacy routes' calls
    (filing, approving, confirming, reading, the export link, the audit chain) must be among
    them, and PrivacyTable's statement holds no action they do not use."""
    grants = granted(world.suite, API)
    storage = {n for n in used.api if n[0].startswith(_STORAGE)}
    assert any(n[1].endswith("PrivacyTable") for n in storage), storage
    refused = sorted(n for n in storage if not any(_covers(g, n) for g in grants))
    assert refused == [], f"the privacy routes call what ApiFunction may not: {refused}"
    privacy = world.suite.stack.refs["PrivacyTable"]
    on_privacy = {g for g in grants if g[1].startswith(str(privacy))}
    unused = sorted(g for g in on_privacy if not any(_covers(g, n) for n in storage))
    assert unused == [], f"ApiFunction's PrivacyTable grants no route uses: {unused}"


def test_the_audit_appender_is_granted_what_it_uses_and_nothing_more(world: World) -> None:
    """PrivacyAuditFunction appends staff's unmasked reads: a batch delivered, then delivered
    again (its reads recognised in the chain, their archive copy written again)."""
    suite = world.suite
    carol = world.customer("carol")
    with recorded(suite) as needed:
        for _ in range(2):
            read = suite.call("GET", f"/customers/{carol.customer_id}", role="support_agent")
            assert read.status == 200, read.body
        messages = suite.receive("AuditQueue")
        assert len(messages) == 2
        arn = suite.stack.attrs["AuditQueue"]["Arn"]
        for _ in range(2):
            assert suite.invoke(AUDIT, sqs_event(messages, arn)) == {"batchItemFailures": []}
    grants = granted(suite, AUDIT)
    storage = {n for n in needed.audit if n[0].startswith(_STORAGE)}
    refused = sorted(n for n in storage if not any(_covers(g, n) for g in grants))
    assert refused == [], f"the appender calls what its policy does not grant: {refused}"
    unused = sorted(g for g in grants if not any(_covers(g, n) for n in storage))
    assert unused == [], f"the appender's policy grants what it does not use: {unused}"
    others = {n[0] for n in needed.audit if not n[0].startswith(_STORAGE)}
    assert others == set(), others
