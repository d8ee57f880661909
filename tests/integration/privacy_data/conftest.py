"""A shop on moto with two customers seeded through the real services (profile, identities on
three channels, orders, points, a segment run, journeys with real dispatch, a ticket with
messages, an after-sales case, lake rows), and a search of every table and bucket of
template.yaml for a customer's identifiers, independent of the stores under test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import boto3
import pytest

from crm import aws
from crm.campaigns.policy import ContactPolicy
from crm.composition import Crm, Settings, reset, root
from crm.erasure import Identifiers, mentioning
from crm.personal_data import DataSubject
from crm.privacy.registry import collect_subject
from crm_local.harness import Suite
from crm_local.template import ROOT
from tests.integration.journeys.conftest import RealShop, TestClock, store_templates

PLANNER = json.loads((ROOT / "events" / "schedule_segments_nightly.json").read_text())
NOTE = "尺码偏小，想换大一号"
MESSAGE = "我的订单还没有发货"
COMPLAINT = "快递员态度很差"


def sms(example: dict[str, Any]) -> dict[str, Any]:
    for step in example["steps"]:
        if step["type"] == "send":
            step["channel"] = "sms"
    return example


@dataclass
class Seeded:
    customer_id: str
    ticket_id: str
    case_id: str
    phone: str


@dataclass
class World:
    shop: RealShop
    cart_journey: str
    order_journey: str
    serial: int = 0

    @property
    def suite(self) -> Suite:
        return self.shop.suite

    def customer(self, key: str) -> Seeded:
        """A customer outside the global control group, consenting to SMS, with a phone and
        an email (blind-indexed identities), an app id and a WeChat openid."""
        policy = ContactPolicy()
        while True:
            self.serial += 1
            n = self.serial
            phone = f"+86139{n:08d}"
            body = {
                "identities": [
                    {"channel": "app", "external_id": f"{key}-app-{n}"},
                    {"channel": "wechat", "external_id": f"{key}-openid-{n}"},
                    {"channel": "phone", "external_id": phone},
                    {"channel": "email", "external_id": f"{key}{n}@shop.example.com"},
                ],
                "attributes": {"name": "张三", "phone": phone,
                               "email": f"{key}{n}@shop.example.com"},
            }  # fmt: skip
            out = self.suite.call("POST", "/customers", body)
            assert out.status == 201, out.body
            cid = str(out.body["customer_id"])
            if not policy.in_global_control(cid):
                break
        change = {"purpose": "marketing_sms", "granted": True, "source": "app"}
        assert self.suite.call("PUT", f"/customers/{cid}/consent", change).status == 200
        points = {"txn_id": f"{key}-pts-1", "kind": "earn", "points": 50, "reason": "welcome"}
        assert self.suite.call("POST", f"/customers/{cid}/points", points).status == 200
        self.shop.event(cid, "order_placed")
        self.shop.event(cid, "order_paid")  # the 7-day journey starts waiting
        self.shop.event(cid, "after_sales", case="complaint", note=COMPLAINT)
        # Later than the payment, which would otherwise count as the cart journey's goal.
        self.shop.clock.now += timedelta(minutes=5)
        self.shop.event(cid, "cart_added")  # the cart journey waits 2 hours
        opened = self.suite.call(
            "POST", "/tickets", {"customer_id": cid, "channel": "app", "message": MESSAGE},
            role="customer", customer_id=cid,
        )  # fmt: skip
        assert opened.status == 201, opened.body
        ticket_id = str(opened.body["ticket_id"])
        reply = {"text": "我们马上查一下", "kind": "reply", "channel": "app"}
        replied = self.suite.call("POST", f"/tickets/{ticket_id}/messages", reply,
                                  role="support_agent")  # fmt: skip
        assert replied.status in (200, 201), replied.body
        case = {"kind": "return", "order_id": f"o-{key}", "customer_id": cid,
                "reason": "size_too_small", "amount": "99.00", "note": NOTE}  # fmt: skip
        made = self.suite.call("POST", "/aftersales", case, role="customer", customer_id=cid)
        assert made.status == 201, made.body
        return Seeded(cid, ticket_id, str(made.body["case_id"]), phone)

    def subject(self, customer_id: str) -> DataSubject:
        return collect_subject(root(), customer_id)


def resources(suite: Suite, types: tuple[str, ...]) -> dict[str, str]:
    """Logical id -> physical name of the template's resources of these types."""
    found = {}
    for logical_id, spec in suite.stack.template.resources.items():
        if spec.get("Type") in types:
            found[logical_id] = str(suite.stack.refs[logical_id])
    return found


# The privacy requests and the audit trail are kept by the retention policy (accountability:
# ids and keyed hashes only; the trail hash-chained under Object Lock): the erasure request
# and a staff member's unmasked read of the customer stay recorded.
RETAINED = ("PrivacyTable/REQ#", "PrivacyTable/AUDIT/", "AuditArchiveBucket/audit/")


def search_everywhere(suite: Suite, subject: DataSubject) -> list[str]:
    """Every place in any table or bucket of the template that holds one of the subject's
    identifiers: a whole read of every item and object, matching identifiers as tokens
    anywhere (keys, values, nested), independent of the stores' own idea of where data is.
    The audit trail, which the retention policy keeps, is left out (`RETAINED`)."""
    identifiers = Identifiers.of(subject)
    found: list[str] = []
    dynamodb = boto3.client("dynamodb")
    for logical_id, table in resources(suite, ("AWS::DynamoDB::Table",)).items():
        items = [i for page in dynamodb.get_paginator("scan").paginate(TableName=table)
                 for i in page["Items"]]  # fmt: skip
        found += [f"{logical_id}/{i['PK']['S']}/{i['SK']['S']}"
                  for i, _ in mentioning(items, identifiers)]  # fmt: skip
    s3 = boto3.client("s3")
    for logical_id, bucket in resources(suite, ("AWS::S3::Bucket",)).items():
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for entry in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
                if identifiers.find(body.decode(errors="replace")):
                    found.append(f"{logical_id}/{entry['Key']}")
    return [place for place in found if not place.startswith(RETAINED)]


@contextmanager
def batch_sizes() -> Iterator[list[int]]:
    """The number of requests of each BatchWriteItem sent through crm.aws's clients."""
    sizes: list[int] = []

    def on_params(params: dict[str, Any], **_: Any) -> None:
        sizes.append(sum(len(v) for v in params["RequestItems"].values()))

    clients = [aws.client_for("dynamodb"), aws.client_for("dynamodb", bulk=True)]
    event = "provide-client-params.dynamodb.BatchWriteItem"
    for client in clients:
        client.meta.events.register(event, on_params, unique_id="batch-sizes")
    try:
        yield sizes
    finally:
        for client in clients:
            client.meta.events.unregister(event, unique_id="batch-sizes")


@pytest.fixture
def world(suite: Suite) -> Iterator[World]:
    clock = TestClock()
    reset(Crm(Settings.from_env(), clock=clock, sleep=lambda _: None))
    shop = RealShop(suite, clock, None)  # type: ignore[arg-type]  # real dispatch, no recorder
    store_templates(suite)
    cart = shop.journey(sms(shop.example("abandoned cart")))
    order = shop.journey(sms(shop.example("7 days after the first order")))
    yield World(shop, cart, order)
    reset()
