"""Every route x every role, generated from the routes' declared permissions and the grants
table: a route added later is covered without anyone writing a test for it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from crm.auth import GRANTS, Role
from crm.http import RouteDoc
from crm_local.harness import Suite, local_suite
from crm_local.runtime import load_module
from crm_local.template import load_template


def _route_docs() -> list[RouteDoc]:
    app = load_module(load_template().function("ApiFunction"))
    return [doc for routes in app.families() for doc in routes.docs]


ROUTES = [doc for doc in _route_docs() if doc.permission is not None]
CASES = [(doc, role) for doc in ROUTES for role in Role]


@pytest.fixture(scope="module")
def deployed() -> Iterator[tuple[Suite, str, str]]:
    with mock_aws(), local_suite() as suite:
        ids = []
        for external in ("perm-1", "perm-2"):
            body = {"identities": [{"channel": "app", "external_id": external}]}
            ids.append(suite.call("POST", "/customers", body).body["customer_id"])
        yield suite, ids[0], ids[1]


def _path(doc: RouteDoc, customer_id: str) -> str:
    values = {"customer_id": customer_id, "name": "tier:high_value", "suggestion_id": "m-none",
              "run_id": "no-such-run", "ticket_id": "t-none", "case_id": "no-such-case",
              # campaigns: S
              "code": "NOSUCHCODE", "send_id": "no-such-send", "campaign_id": "no-such-campaign",
              "offer_id": "no-such-offer",
              }  # fmt: skip
    values["journey_id"] = "no-such-journey"  # campaigns: J
    values["template_id"] = "no-such-template"  # campaigns: D
    values["request_id"] = "no-such-request"  # privacy
    values["import_id"] = "no-such-import"  # historical imports
    return re.sub(r"{(\w+)}", lambda m: values[m.group(1)], doc.path)


def _call(suite: Suite, doc: RouteDoc, role: Role, path: str, me: str) -> Any:
    # An empty JSON object: an allowed caller gets past the gate and then a 400 for the
    # body, a refused one a 403 before the body is read.
    body: dict[str, Any] | None = {} if doc.body else None
    customer = me if role is Role.CUSTOMER else None
    return suite.call(doc.method, path, body, role=role.value, customer_id=customer)


def test_every_guarded_route_is_in_the_table() -> None:
    assert len(ROUTES) >= 14
    assert all(doc.permission is not None for doc in ROUTES)


@pytest.mark.parametrize(
    ("doc", "role"), CASES, ids=[f"{d.method} {d.path} as {r.value}" for d, r in CASES]
)
def test_a_role_reaches_a_route_exactly_when_its_grants_hold_the_permission(
    deployed: tuple[Suite, str, str], doc: RouteDoc, role: Role
) -> None:
    suite, me, _ = deployed
    out = _call(suite, doc, role, _path(doc, me), me)
    assert doc.permission is not None
    if doc.permission in GRANTS[role]:
        assert out.status not in (401, 403), out.body
        assert out.status < 500, out.body
    else:
        assert out.status == 403, out.body
        assert out.body["error"]["code"] == "forbidden"


CUSTOMER_ROUTES = [
    d
    for d in ROUTES
    if "{customer_id}" in d.path and d.permission is not None
    and d.permission in GRANTS[Role.CUSTOMER]
]  # fmt: skip


@pytest.mark.parametrize(
    "doc", CUSTOMER_ROUTES, ids=[f"{d.method} {d.path}" for d in CUSTOMER_ROUTES]
)
def test_a_customer_reaches_only_their_own_profile(
    deployed: tuple[Suite, str, str], doc: RouteDoc
) -> None:
    suite, me, other = deployed
    out = _call(suite, doc, Role.CUSTOMER, _path(doc, other), me)
    assert out.status == 403, out.body


def test_a_public_route_needs_no_token(deployed: tuple[Suite, str, str]) -> None:
    suite, _, _ = deployed
    public = [d for d in _route_docs() if d.permission is None]
    assert [d.path for d in public] == ["/openapi.json"]
    assert suite.call("GET", "/openapi.json", role=None).status == 200
