"""Dispatch on moto through the composition root, with a clock the test moves."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from crm.campaigns import DispatchRequest
from crm.campaigns.policy import ContactPolicy
from crm.composition import Crm, Settings, reset, root
from crm_local.harness import Suite
from tests.fakes import TestClock

# A Tuesday, 10:00 in Shanghai: outside quiet hours.
START = datetime(2026, 11, 24, 2, 0, 0, tzinfo=UTC)

TEMPLATE: dict[str, Any] = {
    "description": "welcome",
    "channels": {
        channel: {
            "zh": {"subject": "你好", "body": "{{ name }}，欢迎！退订：{{ unsubscribe_url }}"},
            "en": {"subject": "Hello", "body": "Hi {{ name }}! Unsubscribe: {{ unsubscribe_url }}"},
        }
        for channel in ("email", "sms", "push", "wechat", "webhook")
    },
}
# TEMPLATE showing the coupon when its message has one: a code is issued only for a message
# that shows it.
COUPON_TEMPLATE: dict[str, Any] = {
    "description": "welcome, with its coupon",
    "channels": {
        channel: {
            lang: {**body, "body": body["body"] + "{% if coupon %} {{ coupon }}{% endif %}"}
            for lang, body in bodies.items()
        }
        for channel, bodies in TEMPLATE["channels"].items()
    },
}


@dataclass
class Shop:
    suite: Suite
    clock: TestClock
    counter: Any = None

    def customer(self, *purposes: str, **attrs: Any) -> str:
        """A customer outside the global control group, with consent to `purposes`."""
        policy = ContactPolicy()
        self.counter = self.counter or itertools.count(1)
        while True:
            n = next(self.counter)
            body = {"identities": [{"channel": "app", "external_id": f"u-{n}"}],
                    "attributes": {"name": "张三", "phone": f"+86138{n:08d}",
                                   "email": f"c{n}@shop.example.com", **attrs}}  # fmt: skip
            out = self.suite.call("POST", "/customers", body)
            assert out.status == 201, out.body
            cid: str = out.body["customer_id"]
            if not policy.in_global_control(cid):
                break
        for purpose in purposes:
            change = {"purpose": purpose, "granted": True, "source": "app"}
            assert self.suite.call("PUT", f"/customers/{cid}/consent", change).status == 200
        return cid

    def request(self, customer_id: str, **fields: Any) -> DispatchRequest:
        values: dict[str, Any] = {
            "source": "journey", "source_id": "j-1", "step": "s-1", "campaign_id": "camp-1",
            "customer_id": customer_id, "channel": "sms", "template_id": "welcome",
            "requested_at": self.clock.now,
        }  # fmt: skip
        values.update(fields)
        return DispatchRequest.model_validate(values)

    def outbox(self, customer_id: str) -> list[dict[str, Any]]:
        return root().campaign_dispatch.outbox(_admin(), customer_id, None)

    def caps(self, customer_id: str) -> dict[str, Any]:
        table = self.suite.stack.refs["CampaignsTable"]
        got = (
            boto3.client("dynamodb")
            .get_item(TableName=table, Key={"PK": {"S": f"CAP#{customer_id}"}, "SK": {"S": "CAP"}})
            .get("Item")
        )
        import json

        return json.loads(got["body"]["S"]) if got else {}

    def items(self, prefix: str) -> list[dict[str, Any]]:
        table = self.suite.stack.refs["CampaignsTable"]
        items = boto3.client("dynamodb").scan(TableName=table)["Items"]
        return [i for i in items if i["PK"]["S"].startswith(prefix)]


def _admin() -> Any:
    from crm.auth import Caller, Role

    return Caller(subject="admin-1", roles=frozenset({Role.ADMIN}))


@pytest.fixture
def shop(suite: Suite) -> Iterator[Shop]:
    clock = TestClock(START)
    reset(Crm(Settings.from_env(), clock=clock, sleep=lambda _: None))
    shop = Shop(suite, clock)
    out = suite.call("PUT", "/campaigns/templates/welcome", TEMPLATE, role="marketer")
    if out.status != 200:  # the routes come later: store it through the service
        from crm.campaigns.templates import MessageTemplate

        root().campaign_templates.save(
            _admin(), "welcome", MessageTemplate.model_validate(TEMPLATE)
        )
    yield shop
    reset()
