"""What the API's and the event folder's first requests load: an unmasked read queues its
audit note without the privacy requests' models or the audit chain, and a profile write is
checked against the rule segments without the segments' API models (the rule grammar) while
none is defined; the event folder's first batch (a new member's order, folded against moto)
loads the profile records' shapes without the API's use cases and their requests and views.
Each of these cost the cold start tens of ms of CPU (docs/architecture.md, "Cold starts").
lint-imports cannot see it (the modules may import each other lazily); this checks what a
running process really loads."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from crm_local.template import ROOT, load_template

# What the first requests run past the handler's import: the note of an unmasked read
# (`QueuedPiiReads`, as the root connects it) and the rule check of a profile write
# (`RuleMembership.evaluate` over a store with no rule segment defined).
FIRST_REQUESTS = """
from datetime import UTC, datetime
from crm.privacy.reads import QueuedPiiReads
from crm.profiles import ProfileRecord
from crm.segments.membership import RuleMembership
from crm.segments.store import SegmentStore
now = datetime(2026, 11, 23, tzinfo=UTC)
sent = []
class Queue:
    def send(self, bodies, delays=None):
        sent.extend(bodies)
QueuedPiiReads(Queue(), lambda: now, lambda: "read-1").unmasked_read("agent-1", "c-1", ["phone"])
assert len(sent) == 1 and json.loads(sent[0])["customer_id"] == "c-1"
class NoRuleSegments(SegmentStore):
    def definitions(self):
        return []
membership = RuleMembership(NoRuleSegments("segments"), bus=None, clock=lambda: now)
record = ProfileRecord(customer_id="c-1", created_at=now, updated_at=now)
assert membership.evaluate(record, now) == []
"""

# A stored definition read (a bad one here: no rule) is what loads the grammar.
READ_A_DEFINITION = """
from crm.segments.records import UnreadableDefinition
from crm.segments.store import _read_definition
read = _read_definition({"PK": {"S": "DEF"}, "SK": {"S": "vip"}})
assert isinstance(read, UnreadableDefinition)
"""

NOT_ON_THE_PATH = (
    "crm.privacy.models",
    "crm.privacy.records",
    "crm.privacy.audit",
    "crm.segments.models",
    "crm.segments.fitted",
    "crm.ticket_events",
    "crm.privacy_events",
)


def loaded(function: str, code: str, watched: tuple[str, ...] = NOT_ON_THE_PATH) -> list[str]:
    handler = load_template().function(function).code_uri / "app.py"
    probe = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('app', {str(handler)!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        + code
        + f"\nwatched = {watched!r}\n"
        + "print('LOADED ' + json.dumps(sorted(m for m in sys.modules if m in watched)))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=False, cwd=ROOT)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(x for x in out.stdout.splitlines() if x.startswith("LOADED "))
    found: list[str] = json.loads(line[len("LOADED ") :])
    return found


def test_the_apis_first_requests_load_no_models_they_do_not_use() -> None:
    assert loaded("ApiFunction", FIRST_REQUESTS) == []


def test_the_event_folders_first_batch_loads_no_models_it_does_not_use() -> None:
    assert loaded("ProfileEventsFunction", FIRST_REQUESTS) == []


def test_reading_a_rule_segment_loads_the_grammar() -> None:
    # The probe would see it: reading a stored definition does load the segments' models.
    assert loaded("ApiFunction", FIRST_REQUESTS + READ_A_DEFINITION) == ["crm.segments.models"]


# A first request on a provisioned stack (moto), in a process that ran nothing else: `body`
# (indented into the stack's block) sets `found`; what it loaded is added to it.
ON_A_STACK = """
import json, os, sys
os.environ.update({"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t",
                   "AWS_DEFAULT_REGION": "us-east-1"})
os.environ.pop("AWS_ENDPOINT_URL", None)
import boto3
from moto import mock_aws
from crm_local.harness import local_suite
with mock_aws(), local_suite() as suite:
    provisioned = {m for m in sys.modules if m.startswith("crm.")}
%s
    print("RAN " + json.dumps({**found, "provisioned": sorted(provisioned & set(WATCHED)),
          "loaded": sorted(m for m in sys.modules if m in WATCHED)}))
"""


def on_a_stack(body: str, watched: tuple[str, ...]) -> dict[str, Any]:
    code = f"WATCHED = {watched!r}\n" + ON_A_STACK % body
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False, cwd=ROOT)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(x for x in out.stdout.splitlines() if x.startswith("RAN "))
    found: dict[str, Any] = json.loads(line[len("RAN ") :])
    return found


# The folder's first batch, as SQS delivers it: the repository's sample (a new member's paid
# order and a product view).
FOLDER_FIRST_BATCH = """
    sqs = boto3.client("sqs")
    for record in json.load(open("events/sqs_profile_events.json"))["Records"]:
        sqs.send_message(QueueUrl=suite.queue_url("ProfileEventsQueue"), MessageBody=record["body"])
    messages = suite.receive("ProfileEventsQueue")
    answer = suite.deliver("ProfileEventsFunction", "ProfileEventsQueue", messages)
    table = suite.stack.refs["CustomersTable"]
    items = boto3.client("dynamodb").scan(TableName=table)["Items"]
    orders = [i["aggregates"]["M"]["orders"]["M"]["order_count"]["N"]
              for i in items if i["SK"]["S"] == "PROFILE"]
    found = {"messages": len(messages), "answer": answer, "orders": orders}"""

# The API's use cases of the profiles family and their request and view models.
# The family's use cases it builds on first use, and the profile changes' routes and models.
ON_FIRST_USE = (
    "crm.profiles.change_models",
    "crm.profiles.change_routes",
    "crm.profiles.edits",
    "crm.profiles.lookup",
    "crm.profiles.merge_suggestions",
    "crm.profiles.points",
)
API_ONLY = (
    "crm.profiles.models",
    *ON_FIRST_USE,
    "crm.profiles.event_intake",
    "crm.profiles.family",
    "crm.profiles.routes",
)


def test_the_event_folders_first_batch_loads_no_api_models() -> None:
    found = on_a_stack(FOLDER_FIRST_BATCH, (*API_ONLY, *NOT_ON_THE_PATH))
    # The batch was folded: a new member created with its paid order, nothing failed.
    assert found["messages"] == 2
    assert found["answer"] == {"batchItemFailures": []}
    assert found["orders"] == ["1"]
    assert found["provisioned"] == []
    assert found["loaded"] == []


def test_the_profiles_family_builds_its_use_cases_when_first_used() -> None:
    # The family holds identity resolution and the views; edits, lookup, merge suggestions and
    # points (and their request and view models) load with their first use. The API never
    # folds events: the family loads neither the folding nor the event and import intakes
    # (their routes are apart: crm.profiles.event_routes, import_routes).
    family = "from crm.profiles.family import Profiles\n"
    intakes = ("crm.profiles.import_intake", "crm.profiles.import_models")
    folding = ("crm.profiles.event_folding", "crm.profiles.aggregates",
               "crm.profiles.customer_events")  # fmt: skip
    watched = (*API_ONLY, *intakes, *folding)
    assert loaded("ApiFunction", family, watched) == ["crm.profiles.family"]
    points = family + "Profiles(None, None, None, None).points\n"
    assert loaded("ApiFunction", points, watched) == sorted([
        "crm.profiles.family", "crm.profiles.points", "crm.profiles.change_models",
        "crm.profiles.models",
    ])  # fmt: skip


# A customer's creation, the API's first request for a shop's sign-up page or an import of
# members, through the handler on a provisioned stack.
API_FIRST_CUSTOMER = """
    reply = suite.call("POST", "/customers",
                       {"identities": [{"channel": "wechat", "external_id": "o-1"}],
                        "attributes": {"phone": "13800138000"}}, role="admin")
    found = {"status": reply.status, "created": reply.body["created"]}"""

# The events' models are loaded by points and the folding, not by a customer's creation.
CHANGES_ONLY = (*ON_FIRST_USE, "crm.events")


def test_a_customers_creation_loads_none_of_the_profile_changes() -> None:
    found = on_a_stack(API_FIRST_CUSTOMER, (*CHANGES_ONLY, *NOT_ON_THE_PATH))
    assert found["status"] == 201, found
    assert found["created"] is True
    assert found["provisioned"] == []
    assert found["loaded"] == []


# The API's most common first request, through the handler on a provisioned stack: a batch of
# one paid order for a customer who exists (put as a bare profile item: creating one through
# the API would load what this watches).
API_FIRST_EVENTS = """
    boto3.client("dynamodb").put_item(TableName=suite.stack.refs["CustomersTable"],
                                      Item={"PK": {"S": "CUST#c-1"}, "SK": {"S": "PROFILE"}})
    event = {"event_id": "e-1", "type": "order_paid", "order_id": "o-1", "customer_id": "c-1",
             "amount": "99.00", "occurred_at": "2026-11-01T10:00:00Z",
             "items": [{"sku": "s-1", "category": "beauty", "quantity": 1,
                        "unit_price": "99.00"}]}
    reply = suite.call("POST", "/events", {"events": [event]}, role="admin")
    queued = len(suite.receive("ProfileEventsQueue"))
    found = {"status": reply.status, "body": reply.body, "queued": queued}"""

# What a customer's requests and views, identity resolution and imports need, the API's other
# families' routes, and the rule segments (a profile write's, not an intake's).
CUSTOMERS_ONLY = (
    "crm.segments.membership",
    "crm.segments.store",
    "crm.profiles.models",
    "crm.profiles.identity",
    "crm.profiles.views",
    "crm.profiles.import_models",
    "crm.profiles.import_intake",
    "crm.profiles.family",
    "crm.profiles.routes",
    "crm.segments.routes",
    "crm.segments.models",
)


def test_the_apis_first_event_batch_loads_the_intake_alone() -> None:
    found = on_a_stack(API_FIRST_EVENTS, (*CUSTOMERS_ONLY, *NOT_ON_THE_PATH))
    assert found["status"] == 202, found
    assert found["queued"] == 1
    assert found["provisioned"] == []
    assert found["loaded"] == []


def test_the_layer_makes_its_clients_without_boto3() -> None:
    # boto3's package import (its transfer manager) would cost every cold start ~15 ms.
    clients = "from crm import aws\naws.dynamodb(); aws.sqs(); aws.kms(); aws.s3()\n"
    watched = ("boto3", "s3transfer")
    assert loaded("ApiFunction", FIRST_REQUESTS + clients, watched) == []
    assert loaded("ProfileEventsFunction", FIRST_REQUESTS + clients, watched) == []
