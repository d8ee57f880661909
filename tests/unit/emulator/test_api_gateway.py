"""What the local API Gateway does with a request before, instead of, and after the function:
routing as API Gateway routes, the authorizer, CORS preflights, gateway responses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from crm_local.api_settings import ApiSettings, Cors, read_api_settings
from crm_local.apigw import ApiRoute, api_routes, match_route
from crm_local.gateway import ApiGateway, Gateway
from crm_local.local_server import LocalServer
from crm_local.provision import Stack
from crm_local.template import load_template
from crm_local.tokens import issue_token

SECRET = "a-development-secret-of-32-bytes!"


class Function:
    """Stands in for the functions: records what reaches them, answers `result`."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.result: Any = {"statusCode": 200, "headers": {"X-From": "function"}, "body": "{}"}

    def __call__(self, function: str, event: dict[str, Any]) -> Any:
        self.calls.append((function, event))
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


@pytest.fixture
def function() -> Function:
    return Function()


@pytest.fixture
def gateway(function: Function) -> ApiGateway:
    template = load_template()
    stack = Stack(template, parameters=template.parameter_defaults())
    settings = read_api_settings(template, stack.resolve)
    return ApiGateway(api_routes(template), function, SECRET, settings)


def bearer(role: str = "admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, role)}"}


def error_code(body: bytes) -> str:
    code: str = json.loads(body)["error"]["code"]
    return code


def test_no_token_is_the_templates_401_and_reaches_no_function(
    gateway: ApiGateway, function: Function
) -> None:
    reply = gateway.answer("GET", "/customers/c-1", {}, None)
    assert reply.status == 401
    assert error_code(reply.body) == "unauthorized"
    assert reply.headers["Access-Control-Allow-Origin"] == "*"
    assert function.calls == []


def test_a_token_reaches_the_function_with_its_claims(
    gateway: ApiGateway, function: Function
) -> None:
    reply = gateway.answer("GET", "/customers/c-1?fields=a", bearer("marketer"), None)
    assert (reply.status, reply.headers, reply.body) == (200, {"X-From": "function"}, b"{}")
    [(name, event)] = function.calls
    assert name == "ApiFunction"
    assert event["resource"] == "/customers/{customer_id}"
    assert event["pathParameters"] == {"customer_id": "c-1"}
    assert event["queryStringParameters"] == {"fields": "a"}
    assert event["requestContext"]["authorizer"]["claims"]["cognito:groups"] == "marketer"


def test_a_preflight_is_answered_without_a_token_or_a_function(
    gateway: ApiGateway, function: Function
) -> None:
    reply = gateway.answer(
        "OPTIONS",
        "/customers/c-1",
        {"Origin": "https://shop.example.com", "Access-Control-Request-Method": "PATCH"},
        None,
    )
    assert reply.status == 200
    assert reply.headers["Access-Control-Allow-Origin"] == "*"
    assert "PATCH" in reply.headers["Access-Control-Allow-Methods"].split(",")
    assert "Authorization" in reply.headers["Access-Control-Allow-Headers"].split(",")
    assert function.calls == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("OPTIONS", "/nowhere"),  # no preflight where no route is
        ("HEAD", "/customers/c-1"),  # REST APIs do not answer HEAD for a GET
        ("DELETE", "/customers/c-1"),  # a method the path does not declare
        ("GET", "/segments/runs"),  # a resource with POST only
        ("GET", "/customers"),
    ],
)
def test_what_the_api_does_not_declare_is_api_gateways_403(
    gateway: ApiGateway, function: Function, method: str, path: str
) -> None:
    reply = gateway.answer(method, path, bearer(), None)
    assert reply.status == 403
    assert error_code(reply.body) == "unknown_route"
    assert reply.headers["Access-Control-Allow-Origin"] == "*"
    assert function.calls == []


@pytest.mark.parametrize("result", [RuntimeError("boom"), None, {"body": "no status"}])
def test_a_failing_function_is_a_502_in_the_error_shape(
    gateway: ApiGateway, function: Function, result: Any
) -> None:
    function.result = result
    reply = gateway.answer("GET", "/customers/c-1", bearer(), None)
    assert reply.status == 502
    assert json.loads(reply.body) == {
        "error": {"code": "internal_error", "message": "Internal server error"}
    }
    assert reply.headers["Access-Control-Allow-Origin"] == "*"


def test_a_body_too_large_is_the_templates_413(gateway: ApiGateway) -> None:
    reply = gateway.too_large({})
    assert (reply.status, error_code(reply.body)) == (413, "payload_too_large")


def test_the_resource_is_chosen_before_the_method() -> None:
    routes = sorted(
        [
            ApiRoute("Fn", "/things/{id}", "GET", True),
            ApiRoute("Fn", "/things/special", "POST", True),
        ],
        key=lambda r: r.specificity,
    )
    assert match_route(routes, "GET", "/things/special") is None  # not /things/{id}
    found = match_route(routes, "GET", "/things/other")
    assert found is not None
    assert found[1] == {"id": "other"}


def test_the_preflight_comes_before_an_any_route_but_not_a_declared_options(
    function: Function,
) -> None:
    routes = sorted(
        [ApiRoute("Fn", "/any", "ANY", True), ApiRoute("Fn", "/own", "OPTIONS", False)],
        key=lambda r: r.specificity,
    )
    settings = ApiSettings(cors=Cors("'*'"))
    gateway = ApiGateway(routes, function, SECRET, settings)
    preflight = gateway.answer("OPTIONS", "/any", {}, None)
    assert preflight.status == 200
    assert preflight.headers["Access-Control-Allow-Methods"] == (
        "DELETE,GET,HEAD,OPTIONS,PATCH,POST,PUT"
    )
    assert function.calls == []
    assert gateway.answer("OPTIONS", "/own", {}, None).headers == {"X-From": "function"}
    assert gateway.answer("GET", "/any", bearer(), None).status == 200
    assert len(function.calls) == 2


def test_a_client_gone_before_its_answer_prints_no_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from http.server import BaseHTTPRequestHandler

    server = LocalServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    try:
        for gone in (BrokenPipeError(32, "Broken pipe"), ConnectionResetError(104, "reset")):
            try:
                raise gone
            except ConnectionError:
                server.handle_error(None, ("127.0.0.1", 5))
        assert capsys.readouterr().err == ""
        try:  # anything else is still reported, as socketserver does
            raise ValueError("a real bug")
        except ValueError:
            server.handle_error(None, ("127.0.0.1", 5))
        assert "ValueError: a real bug" in capsys.readouterr().err
    finally:
        server.server_close()


def test_a_query_sent_in_utf8_unescaped_reaches_the_function_as_sent(function: Function) -> None:
    """curl sends `?category=母婴` as raw UTF-8 bytes; the HTTP server reads the request line
    as Latin-1, and the function got mojibake (and answered an empty 200)."""
    import socket

    template = load_template()
    stack = Stack(template, parameters=template.parameter_defaults())
    settings = read_api_settings(template, stack.resolve)
    served = Gateway(api_routes(template), function, SECRET, 0, settings)
    served.start()
    try:
        host, port = served.server.server_address[:2]
        token = bearer("analyst")["Authorization"]
        request = (f"GET /analytics/metrics/funnel?category=母婴&channel=%E5%BA%97 HTTP/1.1\r\n"
                   f"Host: x\r\nAuthorization: {token}\r\nConnection: close\r\n\r\n")  # fmt: skip
        with socket.socket() as conn:  # (create_connection would name an AWS operation)
            conn.connect((str(host), int(port)))
            conn.sendall(request.encode("utf-8"))
            answer = conn.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200")
    finally:
        served.stop()
    [(_, event)] = function.calls
    assert event["queryStringParameters"] == {"category": "母婴", "channel": "店"}
