"""The API as served keeps the promises of its OpenAPI document, whatever a client sends.

Schemathesis reads the document, generates requests for every operation (valid ones, and
invalid ones that break the document on purpose: wrong types, missing fields, values out of
range, undeclared methods, no token or a bad one) and runs all of its checks on every answer:
no server error; status code, content type, headers and body as documented; invalid data
refused with a 4xx; valid data accepted; authentication enforced; and, over sequences of
calls, resources that were created found and deleted ones gone.

The target is the emulator's gateway (the token check of API Gateway's Cognito authorizer,
the REST proxy event) in front of the real API function, on moto in this process, reached
over HTTP on 127.0.0.1. Runs are reproducible: a fixed seed and a bounded number of examples
per operation.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from moto import mock_aws
from schemathesis.checks import CHECKS

from crm.dynamo import encode_page_token
from crm.profiles.customer_events import MAX_AMOUNT
from crm_local.api_settings import read_api_settings
from crm_local.gateway import Gateway
from crm_local.harness import Suite, local_suite
from crm_local.openapi_doc import DOC_PATH
from crm_local.tokens import issue_token

SECRET = "property-test-signing-secret-of-32-bytes"
EXAMPLES = 10  # fuzzed cases per operation and mode, after the coverage phase's boundary cases
CUSTOMER_EXAMPLES = 10
SEEDED_CUSTOMERS = 3


@dataclass
class Served:
    """What the fixture stood up, and the data generated requests are steered towards."""

    url: str = ""
    admin_token: str = ""
    customer_token: str = ""
    customers: list[str] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)
    journeys: list[str] = field(default_factory=list)  # campaigns: J
    # next_token values the API handed out, by (operation path, customer id or segment name)
    page_tokens: dict[tuple[str, str], str] = field(default_factory=dict)
    cases: dict[str, int] = field(default_factory=dict)  # by phase
    started: float = 0.0


SERVED = Served()  # filled by the `served` fixture; the hooks read it when cases are drawn


def seed(suite: Suite) -> None:
    for n in range(SEEDED_CUSTOMERS):
        body = {
            "identities": [{"channel": "app", "external_id": f"seed-{n}"}],
            "attributes": {"name": f"Seed {n}", "city": "Hangzhou"},
        }
        customer = suite.call("POST", "/customers", body).body["customer_id"]
        SERVED.customers.append(customer)
        for txn in range(2):
            change = {"txn_id": f"seed-{n}-{txn}", "kind": "earn", "points": 10}
            assert suite.call("POST", f"/customers/{customer}/points", change).status == 200
        page = suite.call("GET", f"/customers/{customer}/points", query={"limit": "1"})
        SERVED.page_tokens[("/customers/{customer_id}/points", customer)] = page.body["next_token"]
    rule = {"name": "hangzhou", "rule": {"all": [{"field": "attributes.city", "op": "eq",
                                                   "value": "Hangzhou"}]}}  # fmt: skip
    assert suite.call("POST", "/segments", rule).status == 201
    SERVED.segments = ["hangzhou", "tier:high_value", "rfm:champions"]
    # campaigns: S -- what a valid send or offer names (steer_sends_and_offers)
    from tests.integration.campaigns.conftest import TEMPLATE

    assert suite.call("PUT", f"/campaigns/templates/{SEED_TEMPLATE}", TEMPLATE).status == 200
    offer = {"offer_id": SEED_OFFER, "description": "seed", "kind": "amount_off",
             "amount_off": "5.00", "expires_at": "2999-01-01T00:00:00Z", "budget": 10}  # fmt: skip
    assert suite.call("POST", "/campaigns/coupons/offers", offer).status == 201

    # campaigns: J -- a template valid journeys send, and a journey the paths may name
    assert suite.call("PUT", f"/campaigns/templates/{J_TEMPLATE}", TEMPLATE).status == 200
    journey = {"name": "seed", "trigger": {"type": "event", "event_type": "cart_added"},
               "start": "a", "steps": [{"id": "a", "type": "send", "channel": "sms",
                                        "template_id": J_TEMPLATE}]}  # fmt: skip
    created = suite.call("POST", "/campaigns/journeys", journey)
    assert created.status == 201, created.body
    SERVED.journeys = [created.body["journey_id"]]
    for name in SERVED.segments:
        # the form of token a page that ended on a shard's last member hands out
        token = encode_page_token({"shard": 1, "key": None})
        assert token is not None
        SERVED.page_tokens[("/segments/{name}/members", name)] = token


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with mock_aws(), local_suite() as suite:
        settings = read_api_settings(suite.stack.template, suite.stack.resolve)
        gateway = Gateway(suite.routes, suite.invoke, SECRET, port=0, settings=settings)
        gateway.start()
        try:
            seed(suite)
            SERVED.url = gateway.url
            SERVED.admin_token = issue_token(SECRET, "admin")
            SERVED.customer_token = issue_token(SECRET, "customer", SERVED.customers[0])
            SERVED.started = time.perf_counter()
            yield SERVED
            took = time.perf_counter() - SERVED.started
            print(f"\nschemathesis cases by phase: {SERVED.cases} in {took:.0f}s")
        finally:
            gateway.stop()


ACCEPTED_VALID = ["2xx", "3xx", "401", "403", "404", "409", "421", "429", "5xx"]
REFUSED_INVALID = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428",
                   "429", "5xx"]  # fmt: skip


def config(examples: int, *, coverage: bool) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": 20261123,
            "generation": {"max-examples": examples},
            # A historical import's body (customers, each with a union of event shapes) is
            # deep enough that Hypothesis discards many drafts while building one; its
            # filter_too_much health check then failed POST /imports in a whole `make test`
            # (after the rest of the suite) though never alone, at the same seed. It measures
            # generation, not the API: every check still runs on every case generated.
            "suppress-health-check": ["filter_too_much"],
            # The coverage phase sends every boundary and every kind of invalid value the
            # document allows for (~170 cases an operation); fuzzing then draws at random.
            "phases": {"coverage": {"enabled": coverage}},
            # A valid request may name a customer of another data region: the stack answers
            # 421 (Misdirected Request: that region's API keeps them), as it answers 404 for an
            # id it does not know. Schemathesis' own list, plus 421.
            # An invalid request may also be too large: the API refuses a body over 64 KiB with
            # 413 before reading it (a long list in a journey's rules). Schemathesis' list + 413.
            "checks": {
                "positive_data_acceptance": {"expected-statuses": ACCEPTED_VALID},
                "negative_data_rejection": {"expected-statuses": REFUSED_INVALID},
            },
            # Every check runs on every operation but this one. API Gateway (REST) answers a
            # method a resource does not declare with its MISSING_AUTHENTICATION_TOKEN response
            # (a 403), never the 405 the check wants: the check takes a 401/403 from an
            # operation that needs a token, and only this one needs none.
            "operations": [
                {
                    "include-path": "/openapi.json",
                    "checks": {"unsupported_method": {"enabled": False}},
                },
                # A rule's condition has 19 documented forms: the coverage phase would send
                # ~2,500 cases (100 s) for this one operation; fuzzing draws from every form,
                # with more examples than elsewhere. (Every check still runs.)
                # A journey's steps have as many forms again (and its triggers): the same.
                {
                    "include-operation-id": ["create_journey", "replace_journey"],
                    "phases": {"coverage": {"enabled": False}},
                    "generation": {"max-examples": 4 * examples},
                },
                {
                    "include-operation-id": "define_segment",
                    "phases": {"coverage": {"enabled": False}},
                    "generation": {"max-examples": 4 * examples},
                },
            ],
        }
    )


schema = schemathesis.openapi.from_path(DOC_PATH, config=config(EXAMPLES, coverage=True))
# A customer's token acts on their own profile: the routes with one in the path, and events.
# The admin run has covered the document's boundaries; this one fuzzes what a customer may do.
customer_schema = schemathesis.openapi.from_path(
    DOC_PATH, config=config(CUSTOMER_EXAMPLES, coverage=False)
).include(path_regex=r"^/customers/\{customer_id\}|^/events$")


def one_of_or_generated(
    path_parameters: dict[str, Any], name: str, known: list[str]
) -> st.SearchStrategy[dict[str, Any]]:
    named = st.sampled_from(known).map(lambda value: {**path_parameters, name: value})
    return st.one_of(st.just(path_parameters), named)


@schema.hook
def flatmap_path_parameters(ctx: Any, path_parameters: dict[str, Any] | None) -> Any:
    """Generated ids are mostly unknown (a documented 404): half the cases name seeded ones.
    (The coverage phase's cases are built at collection, before the seed: they keep theirs.)"""
    if path_parameters and SERVED.journeys and "journey_id" in path_parameters:  # campaigns: J
        return one_of_or_generated(path_parameters, "journey_id", SERVED.journeys)
    if path_parameters and SERVED.customers and "customer_id" in path_parameters:
        return one_of_or_generated(path_parameters, "customer_id", SERVED.customers)
    if path_parameters and SERVED.segments and "name" in path_parameters:
        return one_of_or_generated(path_parameters, "name", SERVED.segments)
    return st.just(path_parameters)


@customer_schema.hook("flatmap_path_parameters")
def own_profile(ctx: Any, path_parameters: dict[str, Any] | None) -> Any:
    """Half the cases name the customer's own profile, the others someone else's (403)."""
    if path_parameters and SERVED.customers:
        return one_of_or_generated(path_parameters, "customer_id", SERVED.customers[:1])
    return st.just(path_parameters)


def is_valid(case: Any) -> bool:
    return case.meta is not None and case.meta.generation.mode.is_positive


def steer_page_token(case: Any) -> None:
    """A next_token is opaque: only the tokens the API handed out for that list are valid,
    which no schema can say, so a valid case carries a real one (forged and foreign tokens
    are refused with 400: tests/integration/platform/test_page_tokens.py)."""
    query = case.query or {}
    if "next_token" not in query or not is_valid(case):
        return
    owner = case.path_parameters.get("customer_id") or case.path_parameters.get("name")
    token = SERVED.page_tokens.get((case.operation.path, owner))
    if token is None:
        del query["next_token"]
    else:
        query["next_token"] = token


def steer_birthday(case: Any) -> None:
    """A birthday lies between 1900-01-01 and today, which JSON Schema cannot say (its format
    is any date): a valid case gets its generated date moved into that range, year by year.
    Birthdays out of it are refused with 400 (tests/unit/profiles/test_documented_inputs.py)."""
    if not is_valid(case):
        return
    for attributes in profile_attributes(case):
        raw = attributes.get("birthday")
        if not isinstance(raw, str):
            continue
        try:
            born = date.fromisoformat(raw)
        except ValueError:
            continue
        today = date.today()
        if not date(1900, 1, 1) <= born <= today:
            year = 1900 + born.year % (today.year - 1900)
            attributes["birthday"] = born.replace(year=year, day=min(born.day, 28)).isoformat()


def profile_attributes(case: Any) -> list[dict[str, Any]]:
    """A request's profile attributes: a profile's (`attributes`), a rectification's
    (`changes`, POST /privacy/requests) or an import's customers' (POST /imports)."""
    body = case.body if isinstance(case.body, dict) else {}
    found = [body[k] for k in ("attributes", "changes") if isinstance(body.get(k), dict)]
    customers = body.get("customers")
    if isinstance(customers, list):
        found += [
            c["attributes"]
            for c in customers
            if isinstance(c, dict) and isinstance(c.get("attributes"), dict)
        ]
    return found


def _into_the_past(raw: str, now: datetime) -> str:
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return raw
    if moment.tzinfo is None or moment.astimezone(UTC) <= now:
        return raw
    year = 1900 + moment.year % (now.year - 1900)
    return moment.replace(year=year, day=min(moment.day, 28)).isoformat()


def _order_total(event: dict[str, Any]) -> Decimal | None:
    """The amount an order event's items say, when they say one."""
    items = event.get("items")
    if not isinstance(items, list) or not items:
        return None
    try:
        total = sum(Decimal(str(i["unit_price"])) * int(i["quantity"]) for i in items)
        total += Decimal(str(event.get("shipping_fee") or 0))
        total -= Decimal(str(event.get("discount") or 0))
    except (KeyError, TypeError, ArithmeticError):
        return None
    return total


def steer_events_and_times(case: Any) -> None:
    """Rules across fields and against the clock, which JSON Schema cannot say: a valid case
    keeps them. Its times (an event's occurred_at, a consent's decided_at) move into the past,
    its event ids are made unique in the batch, and an order's amount becomes its items' total
    (or the items go when no amount can be). Each refusal is tested by hand: future events
    and amounts in tests/integration/profiles/test_event_intake.py, a future consent and a
    repeated event id in tests/integration/platform/test_contract_edges.py."""
    body = case.body if isinstance(case.body, dict) else {}
    if not is_valid(case) or not body:
        return
    now = datetime.now(UTC)
    if isinstance(body.get("decided_at"), str):
        body["decided_at"] = _into_the_past(body["decided_at"], now)
    batches = [body.get("events")]
    customers = body.get("customers")
    if isinstance(customers, list):  # POST /imports: each customer's events; refs unique too
        for m, customer in enumerate(customers):
            if isinstance(customer, dict):
                if isinstance(customer.get("ref"), str):
                    customer["ref"] = f"{customer['ref'][:120]}-{m}"
                batches.append(customer.get("events"))
    for b, events in enumerate(batches):
        if not isinstance(events, list):
            continue
        for n, event in enumerate(events):
            if not isinstance(event, dict):
                continue
            if isinstance(event.get("occurred_at"), str):
                event["occurred_at"] = _into_the_past(event["occurred_at"], now)
            if isinstance(event.get("event_id"), str):
                event["event_id"] = f"{event['event_id'][:110]}-{b}-{n}"
            total = _order_total(event)
            if total is not None and "amount" in event:
                if Decimal(0) <= total <= MAX_AMOUNT:
                    event["amount"] = str(total)
                else:
                    event["items"] = []


# ---- campaigns: S
SEED_TEMPLATE, SEED_OFFER = "seed-template", "seed-offer"


def steer_sends_and_offers(case: Any) -> None:
    """What a send or an offer names must exist, and an offer's fields agree (its kind with
    its discount, the discount below the threshold, an expiry ahead), which JSON Schema
    cannot say: a valid case names seeded ones and keeps the rules. Each refusal is tested
    by hand (tests/integration/sends/test_sends.py, test_coupons.py)."""
    body = case.body if isinstance(case.body, dict) else None
    if body is None or not is_valid(case) or case.method.upper() != "POST":
        return
    if case.operation.path == "/campaigns/sends":
        body["segment"], body["template_id"] = "rfm:champions", SEED_TEMPLATE
        if body.get("coupon_offer_id") is not None:
            body["coupon_offer_id"] = SEED_OFFER
        for n, variant in enumerate(v for v in body.get("variants") or [] if isinstance(v, dict)):
            variant["name"] = f"v{n}"
            if variant.get("template_id") is not None:
                variant["template_id"] = SEED_TEMPLATE
    elif case.operation.path == "/campaigns/coupons/offers":
        if body.get("kind") == "percent_off":
            body.pop("amount_off", None)
            body.setdefault("percent_off", 10)
            body["percent_off"] = body["percent_off"] or 10
        else:
            body["kind"] = "amount_off"
            body.pop("percent_off", None)
            body["amount_off"] = "1.00"
            if body.get("min_order") is not None:
                body["min_order"] = "99.00"
        body["expires_at"] = "2999-01-01T00:00:00Z"


# campaigns: D
def steer_templates(case: Any) -> None:
    """A message template's bodies must parse as jinja2 and name only its variables, which
    JSON Schema cannot say: a valid case's braces become brackets (syntax errors and unknown
    variables are refused with 400: tests/integration/campaigns/test_templates.py)."""
    body = case.body if isinstance(case.body, dict) else {}
    channels = body.get("channels")
    if not is_valid(case) or not isinstance(channels, dict):
        return
    for bodies in channels.values():
        for text in bodies.values() if isinstance(bodies, dict) else ():
            for part in ("subject", "body") if isinstance(text, dict) else ():
                if isinstance(text.get(part), str):
                    text[part] = text[part].replace("{", "(").replace("}", ")")


def steer_feedback_scope(case: Any) -> None:
    """Product feedback is read for one SKU or one product category, exactly one of the two,
    which a document's query parameters cannot say: a valid case keeps one (both or neither
    are refused with 400: tests/integration/tickets/test_aftersales.py)."""
    if case.operation.path != "/feedback/products" or not is_valid(case):
        return
    query = case.query if case.query is not None else {}
    if "sku" in query:
        query.pop("category", None)
    elif "category" not in query:
        query["sku"] = "SKU-1"
    case.query = query


def steer_time_zone(case: Any) -> None:
    """A profile's time_zone must name a zone of the IANA database, a list the document leaves
    out (it changes with every tzdata release): a valid case names a real one (unknown zones
    are refused with 400: tests/integration/campaigns/test_customer_zones.py)."""
    if not is_valid(case):
        return
    for attributes in profile_attributes(case):
        if isinstance(attributes.get("time_zone"), str):
            attributes["time_zone"] = "Europe/Berlin"


def steer_residency(case: Any) -> None:
    """A stack keeps one data region's customers (DATA_REGION, cn here): a customer or event
    of another region is refused with 421 (tests/integration/profiles/test_data_residency.py),
    which the document cannot tie to the stack serving it. A valid case stays in this region."""
    if not is_valid(case) or not isinstance(case.body, dict):
        return
    bodies = [case.body]
    events = case.body.get("events")
    if isinstance(events, list):
        bodies += [e for e in events if isinstance(e, dict)]
    customers = case.body.get("customers")  # POST /imports
    if isinstance(customers, list):
        for customer in customers:
            if isinstance(customer, dict):
                bodies.append(customer)
                imported = customer.get("events")
                if isinstance(imported, list):
                    bodies += [e for e in imported if isinstance(e, dict)]
    for body in bodies:
        if body.get("residency") not in (None, "cn"):
            body["residency"] = "cn"


# campaigns: J
J_TEMPLATE = "journey-seed"
JOURNEY_PATHS = ("/campaigns/journeys", "/campaigns/journeys/{journey_id}")


def steer_journeys(case: Any) -> None:
    """A journey's steps must form a graph from its start, its events be known and its sends
    name stored templates, which JSON Schema cannot say: a valid case keeps its name,
    description and trigger (its event the one first-order triggers allow) and gets one send
    of the seeded template. Each refusal is tested by hand
    (tests/integration/journeys/test_journeys.py)."""
    body = case.body if isinstance(case.body, dict) else None
    if body is None or not is_valid(case) or case.operation.path not in JOURNEY_PATHS:
        return
    trigger = body.get("trigger")
    if isinstance(trigger, dict) and "event_type" in trigger:
        trigger["event_type"] = "order_paid"
    body["start"] = "a"
    body["steps"] = [{"id": "a", "type": "send", "channel": "sms", "template_id": J_TEMPLATE}]
    body["exit"], body["reentry"] = [], {"mode": "once"}
    body.pop("goal", None)


def steer_calendars(case: Any) -> None:
    """A shop calendar's name is a slug, its time zone and holidays' country are ones the
    IANA database and the holidays package know, a day's periods are in order without
    overlapping, its dates lie in 2000-2099 and in one list only, and SLA policies name
    calendars that exist, which JSON Schema cannot say: a valid case keeps its shape with
    such values (each refusal is tested by hand: tests/integration/tickets/test_calendars.py,
    tests/unit/tickets/test_shop_calendars.py)."""
    if not is_valid(case) or case.method.upper() != "PUT":
        return
    body = case.body if isinstance(case.body, dict) else None
    if case.operation.path == "/tickets/sla-policies" and body is not None:
        calendars = body.get("calendars")
        if isinstance(calendars, dict):
            for n, priority in enumerate(calendars):
                calendars[priority] = ("business_hours", "24x7")[n % 2]
        return
    if case.operation.path != "/tickets/calendars/{name}" or body is None:
        return
    case.path_parameters = {**(case.path_parameters or {}), "name": "steered"}
    body["time_zone"] = "Europe/Berlin"
    if isinstance(body.get("holidays"), dict):
        body["holidays"] = {"country": "DE"}
    hours = body.get("hours")
    if isinstance(hours, dict):
        for day, periods in hours.items():
            if isinstance(periods, list):
                hours[day] = ["09:00-17:00"] if periods else []
        if not any(hours.values()):
            hours["mon"] = ["09:00-17:00"]
    for n, key in enumerate(("closed_dates", "extra_working_dates")):
        dates = body.get(key)
        if isinstance(dates, list):  # closed dates in even years, extra ones in odd years
            body[key] = [f"{2000 + 2 * (i % 50) + n}-01-0{1 + i % 9}" for i in range(len(dates))]


def call_and_validate(case: Any, token: str) -> None:
    steer_calendars(case)
    steer_page_token(case)
    steer_feedback_scope(case)
    steer_residency(case)
    steer_time_zone(case)
    steer_birthday(case)
    steer_events_and_times(case)
    steer_sends_and_offers(case)
    steer_templates(case)
    steer_journeys(case)
    phase = case.meta.phase.name.value if case.meta else "explicit"
    mode = case.meta.generation.mode.value if case.meta else "explicit"
    SERVED.cases[f"{phase}/{mode}"] = SERVED.cases.get(f"{phase}/{mode}", 0) + 1
    SERVED.cases[case.operation.label] = SERVED.cases.get(case.operation.label, 0) + 1
    # No `checks=`: every check the configuration enables runs, which is every check.
    case.call_and_validate(base_url=SERVED.url, headers={"Authorization": f"Bearer {token}"})


def test_every_check_runs_on_every_operation_but_one() -> None:
    everything = set(CHECKS.get_all_names())
    assert {"not_a_server_error", "response_schema_conformance", "negative_data_rejection",
            "positive_data_acceptance", "ignored_auth"} <= everything  # fmt: skip
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an Err fails the test, as it should
        checks = schema.config.checks_config_for(operation=operation, phase=None)
        off = {name for name in everything if not checks.get_by_name(name=name).enabled}
        assert off == ({"unsupported_method"} if operation.path == "/openapi.json" else set())


def test_the_document_checked_is_the_one_served(served: Served) -> None:
    with urllib.request.urlopen(f"{served.url}/openapi.json") as response:  # noqa: S310
        assert json.load(response) == json.loads(DOC_PATH.read_text())


@schema.parametrize()
def test_every_operation_keeps_the_document_for_an_admin(case: Any, served: Served) -> None:
    call_and_validate(case, served.admin_token)


@customer_schema.parametrize()
def test_a_customer_on_their_own_profile_gets_what_the_document_says(
    case: Any, served: Served
) -> None:
    call_and_validate(case, served.customer_token)


def test_workflows_keep_the_document(served: Served) -> None:
    """Sequences: what POST /customers and POST /segments create, the other operations use
    (links schemathesis infers from the document), so use-after-free and a created resource
    that cannot be found are checked too."""

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: Any) -> None:
            steer_page_token(case)
            steer_feedback_scope(case)
            steer_residency(case)
            steer_birthday(case)
            steer_events_and_times(case)
            steer_sends_and_offers(case)
            steer_templates(case)
            steer_journeys(case)
            steer_calendars(case)
            SERVED.cases["stateful"] = SERVED.cases.get("stateful", 0) + 1

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {
                "base_url": served.url,
                "headers": {"Authorization": f"Bearer {served.admin_token}"},
            }

    Workflow.run(
        settings=hypothesis.settings(
            max_examples=10,
            stateful_step_count=6,
            deadline=None,
            derandomize=True,
            database=None,
        )
    )
