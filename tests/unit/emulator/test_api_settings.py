"""What API Gateway answers by itself, read from the template: error bodies, their headers and
CORS preflights, as template.yaml declares them, and AWS's defaults where it declares none."""

from __future__ import annotations

import json
from typing import Any

import pytest

from crm_local.api_settings import ApiSettings, read_api_settings
from crm_local.provision import Stack
from crm_local.template import Template, load_template, parse_template


def settings_of(template: Template, **parameters: str) -> ApiSettings:
    stack = Stack(template, parameters={**template.parameter_defaults(), **parameters})
    return read_api_settings(template, stack.resolve)


def body_of(settings: ApiSettings, kind: str, **options: Any) -> Any:
    return json.loads(settings.reply(kind, {}, **options).body)


@pytest.fixture(scope="module")
def crm() -> ApiSettings:
    return settings_of(load_template())


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("UNAUTHORIZED", 401, "unauthorized"),
        ("ACCESS_DENIED", 403, "forbidden"),
        ("MISSING_AUTHENTICATION_TOKEN", 403, "unknown_route"),
        ("EXPIRED_TOKEN", 403, "token_expired"),
        ("REQUEST_TOO_LARGE", 413, "payload_too_large"),
        ("THROTTLED", 429, "throttled"),
    ],
)
def test_the_crm_api_answers_in_its_error_shape_with_cors(
    crm: ApiSettings, kind: str, status: int, code: str
) -> None:
    reply = crm.reply(kind, {})
    assert reply.status == status
    assert reply.headers == {"Content-Type": "application/json", "Access-Control-Allow-Origin": "*"}
    body = json.loads(reply.body)
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


def test_a_failed_function_gets_the_default_5xx_shape(crm: ApiSettings) -> None:
    reply = crm.reply("DEFAULT_5XX", {}, status=502)
    assert reply.status == 502
    assert json.loads(reply.body) == {
        "error": {"code": "internal_error", "message": "Internal server error"}
    }
    assert reply.headers["Access-Control-Allow-Origin"] == "*"


def test_other_4xx_of_api_gateway_name_what_went_wrong(crm: ApiSettings) -> None:
    # DEFAULT_4XX renders $context.error.messageString: API Gateway's own message, quoted.
    reply = crm.reply("UNSUPPORTED_MEDIA_TYPE", {})
    assert reply.status == 415
    assert json.loads(reply.body) == {
        "error": {"code": "bad_request", "message": "UNSUPPORTED_MEDIA_TYPE"}
    }


def test_the_crm_preflight_needs_no_token_and_allows_the_client_headers(
    crm: ApiSettings,
) -> None:
    assert crm.cors is not None
    assert not crm.preflight_needs_token
    assert crm.cors.preflight({"GET", "PATCH"}, {}) == {
        "Content-Type": "application/json",
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Headers": "Authorization,Content-Type,X-Correlation-Id",
        "Access-Control-Allow-Methods": "GET,POST,PUT,PATCH,DELETE,OPTIONS",
        "Access-Control-Max-Age": "600",
    }


def test_the_origin_is_the_stack_parameter(crm: ApiSettings) -> None:
    shop = settings_of(load_template(), CorsAllowOrigin="https://shop.example.com")
    assert shop.reply("UNAUTHORIZED", {}).headers["Access-Control-Allow-Origin"] == (
        "https://shop.example.com"
    )
    assert shop.cors is not None
    assert shop.cors.preflight({"GET"}, {})["Access-Control-Allow-Origin"] == (
        "https://shop.example.com"
    )
    assert load_template().function("ApiFunction").environment["CORS_ALLOW_ORIGIN"] == {
        "Ref": "CorsAllowOrigin"
    }


def api_template(api_properties: str, method: str = "GET") -> Template:
    return parse_template(
        f"""
Resources:
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: v1
{api_properties}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn
      Handler: app.handler
      Events:
        Http:
          Type: Api
          Properties: {{RestApiId: !Ref Api, Path: "/things/{{id}}", Method: {method}}}
"""
    )


def test_with_nothing_declared_api_gateway_answers_its_own_defaults() -> None:
    plain = settings_of(api_template(""))
    assert plain.cors is None
    reply = plain.reply("UNAUTHORIZED", {})
    assert (reply.status, json.loads(reply.body)) == (401, {"message": "Unauthorized"})
    assert reply.headers == {"Content-Type": "application/json"}
    assert body_of(plain, "MISSING_AUTHENTICATION_TOKEN") == {
        "message": "Missing Authentication Token"
    }


def test_default_4xx_covers_the_undeclared_and_its_status_replaces_theirs() -> None:
    declared = api_template(
        """      GatewayResponses:
        DEFAULT_4XX:
          StatusCode: "400"
          ResponseParameters:
            Headers: {X-Api: "'crm'", X-Origin: method.request.header.origin}
          ResponseTemplates:
            application/json: '{"type": "$context.error.responseType",
              "m": $context.error.messageString}'
        UNAUTHORIZED:
          ResponseTemplates:
            text/plain: 'sign in'
"""
    )
    settings = settings_of(declared)
    reply = settings.reply("MISSING_AUTHENTICATION_TOKEN", {"Origin": "https://a.example"})
    assert reply.status == 400
    assert json.loads(reply.body) == {
        "type": "MISSING_AUTHENTICATION_TOKEN",
        "m": "Missing Authentication Token",
    }
    assert reply.headers["X-Origin"] == "https://a.example"
    assert reply.headers["X-Api"] == "crm"
    assert "X-Origin" not in settings.reply("THROTTLED", {}).headers  # no Origin, no header
    unauthorized = settings.reply("UNAUTHORIZED", {})  # declared: its own, not DEFAULT_4XX's
    assert (unauthorized.status, unauthorized.body) == (401, b"sign in")
    assert unauthorized.headers == {"Content-Type": "text/plain"}


def test_cors_as_one_origin_answers_the_path_methods_and_keeps_the_authorizer() -> None:
    template = api_template(
        """      Cors: "'https://shop.example.com'"
      Auth:
        DefaultAuthorizer: Pool
        Authorizers: {Pool: {UserPoolArn: arn:aws:cognito-idp:us-east-1:1:userpool/x}}
""",
        method="PATCH",
    )
    settings = settings_of(template)
    assert settings.preflight_needs_token  # SAM's default: AddDefaultAuthorizerToCorsPreflight
    assert settings.cors is not None
    headers = settings.cors.preflight({"PATCH", "GET"}, {})
    assert headers["Access-Control-Allow-Methods"] == "GET,OPTIONS,PATCH"
    assert headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert "Access-Control-Allow-Headers" not in headers
    assert settings.cors.preflight({"ANY"}, {})["Access-Control-Allow-Methods"] == (
        "DELETE,GET,HEAD,OPTIONS,PATCH,POST,PUT"
    )


def test_values_the_local_gateway_cannot_compute_are_refused_when_read() -> None:
    template = api_template(
        """      GatewayResponses:
        UNAUTHORIZED:
          ResponseParameters:
            Headers: {X-Where: method.request.path.id}
"""
    )
    with pytest.raises(NotImplementedError, match=r"method\.request\.path\.id"):
        settings_of(template)
