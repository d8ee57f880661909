"""Drives the template's functions in-process against moto, the way AWS would invoke them.

Shared by the integration tests and the benchmarks."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3

from crm import aws
from crm_local.apigw import ApiRoute, api_routes, match_route, proxy_event
from crm_local.provision import Stack, provision
from crm_local.runtime import environment, invoke, reset_process_state
from crm_local.sqs import sqs_event
from crm_local.template import Template, load_template
from crm_local.tokens import CUSTOMER_ISSUER, STAFF_ISSUER

ROLE_SUBJECTS = {
    "support_agent": "agent-1",
    "support_manager": "manager-1",
    "marketer": "marketer-1",
    "analyst": "analyst-1",
    "privacy_officer": "privacy-1",
    "admin": "admin-1",
}


def claims_for(role: str, customer_id: str | None = None) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": ROLE_SUBJECTS.get(role, f"user-{customer_id}"),
        # REST APIs pass groups as one string; the service must read this form.
        "cognito:groups": f"[{role}]",
        "token_use": "id",
        "iss": CUSTOMER_ISSUER if role == "customer" else STAFF_ISSUER,
    }
    if customer_id:
        claims["custom:customer_id"] = customer_id
    return claims


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class Suite:
    """The deployed suite, as seen by a client app and by AWS's event sources."""

    stack: Stack
    routes: list[ApiRoute] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.routes = api_routes(self.stack.template)

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        spec = self.stack.template.function(function)
        return invoke(spec, event, self.stack.environment(spec))

    # ------------------------------------------------------------ API Gateway -> ApiFunction
    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        role: str | None = "admin",
        customer_id: str | None = None,
        query: Mapping[str, str] | None = None,
        raw_body: str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        found = match_route(self.routes, method, path)
        assert found, f"{method} {path} is not a route of template.yaml"
        route, params = found
        payload = raw_body if raw_body is not None else (None if body is None else json.dumps(body))
        event = proxy_event(
            route,
            path,
            params,
            method=method,
            headers={"Content-Type": "application/json", **(headers or {})},
            query=query,
            body=payload,
            claims=claims_for(role, customer_id) if role and route.authorized else None,
        )
        out = self.invoke(route.function, event)
        text = out.get("body") or "null"
        return Reply(out["statusCode"], json.loads(text), out.get("headers", {}))

    # ------------------------------------------------------------ SQS -> ProfileEventsFunction
    def queue_url(self, logical_id: str) -> str:
        return str(self.stack.refs[logical_id])

    def receive(self, logical_id: str, max_messages: int = 10) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs")
        out = sqs.receive_message(
            QueueUrl=self.queue_url(logical_id),
            MaxNumberOfMessages=max_messages,
            AttributeNames=["All"],
            VisibilityTimeout=30,
        )
        return [dict(m) for m in out.get("Messages", [])]

    def deliver(self, function: str, queue: str, messages: list[dict[str, Any]]) -> Any:
        """Invoke a function with an SQS batch and settle it as the event source mapping does:
        delete what succeeded, make what failed visible again."""
        arn = self.stack.attrs[queue]["Arn"]
        try:
            response = self.invoke(function, sqs_event(messages, arn))
        except Exception:  # a failed invocation returns the whole batch to the queue
            response = {"batchItemFailures": [{"itemIdentifier": m["MessageId"]} for m in messages]}
        failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
        sqs = boto3.client("sqs")
        for message in messages:
            if message["MessageId"] in failed:
                sqs.change_message_visibility(
                    QueueUrl=self.queue_url(queue),
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=0,
                )
            else:
                sqs.delete_message(
                    QueueUrl=self.queue_url(queue), ReceiptHandle=message["ReceiptHandle"]
                )
        return response

    def tap_bus(self, name: str, pattern: dict[str, Any]) -> str:
        """A queue subscribed to what the CRM's bus carries that matches `pattern`."""
        sqs = boto3.client("sqs")
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events = boto3.client("events")
        bus = self.stack.refs["CrmBus"]
        events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))
        events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
        return str(url)

    @staticmethod
    def take_all(url: str) -> list[dict[str, Any]]:
        """Every message a queue holds now, bodies parsed, deleted as they are read."""
        sqs = boto3.client("sqs")
        found: list[dict[str, Any]] = []
        while True:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return found
            for m in messages:
                found.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    def drain(self, function: str = "ProfileEventsFunction", queue: str = "ProfileEventsQueue",
              rounds: int = 10) -> int:  # fmt: skip
        """Deliver batches until the queue is empty; returns the number of messages handled."""
        handled = 0
        for _ in range(rounds):
            messages = self.receive(queue)
            if not messages:
                break
            self.deliver(function, queue, messages)
            handled += len(messages)
        return handled


@contextmanager
def local_suite(template: Template | None = None) -> Iterator[Suite]:
    """Provision template.yaml (or a variant of it: a stack as an older deploy left it) on the
    current AWS endpoint (moto) and set the functions' shared environment for the code that
    runs in this process."""
    template = template or load_template()
    stack = provision(template)
    env: dict[str, str] = {}
    for spec in template.functions():
        env.update(stack.environment(spec))
    with environment(env):
        reset_process_state()
        try:
            yield Suite(stack)
        finally:
            reset_process_state()


@contextmanager
def count_requests() -> Iterator[Counter[str]]:
    """Counts the AWS API calls made through crm.aws's shared clients, by 'service.Operation'."""
    counts: Counter[str] = Counter()

    def on_call(model: Any, **_: Any) -> None:
        counts[f"{model.service_model.service_name}.{model.name}"] += 1

    clients = [aws.client_for(s) for s in aws.SERVICES] + [
        aws.client_for(s, bulk=True) for s in aws.BULK_SERVICES
    ]
    for client in clients:
        client.meta.events.register("before-call", on_call, unique_id="count-requests")
    try:
        yield counts
    finally:
        for client in clients:
            client.meta.events.unregister("before-call", unique_id="count-requests")
