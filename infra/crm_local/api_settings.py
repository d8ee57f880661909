"""What API Gateway answers by itself, read from the template's `AWS::Serverless::Api`: CORS
preflights (SAM's `Cors`) and gateway responses (`GatewayResponses`: the status, headers and
body of a 401, 403, 413 or 5xx that never reaches a function).

The local gateway answers exactly what the template declares, and API Gateway's own defaults
where it declares nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from crm_local.template import Template

Resolve = Callable[[Any], Any]

# API Gateway's status of each gateway response type when the API sets none.
DEFAULT_STATUS = {
    "ACCESS_DENIED": 403, "API_CONFIGURATION_ERROR": 500, "AUTHORIZER_CONFIGURATION_ERROR": 500,
    "AUTHORIZER_FAILURE": 500, "BAD_REQUEST_BODY": 400, "BAD_REQUEST_PARAMETERS": 400,
    "EXPIRED_TOKEN": 403, "INTEGRATION_FAILURE": 504, "INTEGRATION_TIMEOUT": 504,
    "INVALID_API_KEY": 403, "INVALID_SIGNATURE": 403, "MISSING_AUTHENTICATION_TOKEN": 403,
    "QUOTA_EXCEEDED": 429, "REQUEST_TOO_LARGE": 413, "RESOURCE_NOT_FOUND": 404,
    "THROTTLED": 429, "UNAUTHORIZED": 401, "UNSUPPORTED_MEDIA_TYPE": 415, "WAF_FILTERED": 403,
}  # fmt: skip
# API Gateway's own messages ($context.error.message) for what the local gateway answers.
MESSAGES = {
    "UNAUTHORIZED": "Unauthorized",
    "MISSING_AUTHENTICATION_TOKEN": "Missing Authentication Token",
    "REQUEST_TOO_LARGE": "Request Too Long",
    "DEFAULT_5XX": "Internal server error",
}
AWS_BODY = '{"message":$context.error.messageString}'
# SAM's preflight answers for every method of the path when `AllowMethods` is not given.
ALL_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
_CONTEXT = re.compile(
    r"\$context\.(error\.messageString|error\.message|error\.responseType|requestId)"
)
_REQUEST_HEADER = "method.request.header."


@dataclass(frozen=True)
class GatewayReply:
    status: int
    headers: dict[str, str]
    body: bytes


def _check_expression(expression: str, where: str) -> str:
    """API Gateway's value of a response header: a 'literal' or a request header."""
    quoted = len(expression) >= 2 and expression[0] == expression[-1] == "'"
    if not quoted and not expression.startswith(_REQUEST_HEADER):
        raise NotImplementedError(
            f"{where}: the local gateway knows 'literal' and method.request.header.NAME values, "
            f"not {expression!r}; teach infra/crm_local/api_settings.py"
        )
    return expression


def _evaluate(expression: str, request_headers: Mapping[str, str]) -> str | None:
    if expression.startswith(_REQUEST_HEADER):
        name = expression.removeprefix(_REQUEST_HEADER).lower()
        return next((v for k, v in request_headers.items() if k.lower() == name), None)
    return expression[1:-1]


def _headers(expressions: Mapping[str, str], request: Mapping[str, str]) -> dict[str, str]:
    values = {name: _evaluate(expr, request) for name, expr in expressions.items()}
    return {name: value for name, value in values.items() if value is not None}


@dataclass(frozen=True)
class Cors:
    """SAM's `Cors`: values are API Gateway expressions ("'*'"), as SAM takes them."""

    allow_origin: str
    allow_headers: str | None = None
    allow_methods: str | None = None
    max_age: str | None = None
    allow_credentials: bool = False

    def preflight(self, methods: Iterable[str], request: Mapping[str, str]) -> dict[str, str]:
        """The headers of SAM's OPTIONS mock integration on a path declaring `methods`."""
        allow_methods = self.allow_methods
        if allow_methods is None:
            declared = {m.upper() for m in methods}
            chosen = ALL_METHODS if "ANY" in declared else sorted({*declared, "OPTIONS"})
            allow_methods = "'" + ",".join(chosen) + "'"
        expressions = {
            "Access-Control-Allow-Origin": self.allow_origin,
            "Access-Control-Allow-Headers": self.allow_headers,
            "Access-Control-Allow-Methods": allow_methods,
            "Access-Control-Max-Age": self.max_age,
            "Access-Control-Allow-Credentials": "'true'" if self.allow_credentials else None,
        }
        present = {name: expr for name, expr in expressions.items() if expr is not None}
        return {"Content-Type": "application/json", **_headers(present, request)}


@dataclass(frozen=True)
class GatewayResponse:
    """One entry of `GatewayResponses`, as declared."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    templates: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ApiSettings:
    cors: Cors | None = None
    preflight_needs_token: bool = False
    responses: dict[str, GatewayResponse] = field(default_factory=dict)

    def reply(
        self,
        kind: str,
        request: Mapping[str, str],
        *,
        status: int | None = None,
        request_id: str = "",
    ) -> GatewayReply:
        """API Gateway's answer of type `kind`: as declared, else as DEFAULT_4XX/DEFAULT_5XX
        declares (whose status, when set, replaces every uncustomised one's), else AWS's."""
        own_status = status or DEFAULT_STATUS[kind]
        declared = self.responses.get(kind)
        if declared is None:
            declared = self.responses.get("DEFAULT_4XX" if own_status < 500 else "DEFAULT_5XX")
        response = declared or GatewayResponse()
        content_type, template = next(
            iter(sorted(response.templates.items(), key=lambda t: t[0] != "application/json")),
            ("application/json", AWS_BODY),
        )
        message = MESSAGES.get(kind, kind)
        values = {
            "error.message": message,
            "error.messageString": json.dumps(message),
            "error.responseType": kind,
            "requestId": request_id,
        }
        body = _CONTEXT.sub(lambda m: values[m.group(1)], template)
        headers = {"Content-Type": content_type, **_headers(response.headers, request)}
        return GatewayReply(response.status or own_status, headers, body.encode())


def _api_properties(template: Template) -> dict[str, Any]:
    """The properties of the one REST API the template's `Api` events name, over the
    template's `Globals.Api` as SAM merges them."""
    names: set[str | None] = set()  # None: SAM's implicit API
    for spec in template.functions():
        for event in spec.events:
            if event.type == "Api":
                ref = event.properties.get("RestApiId")
                names.add(ref.get("Ref") if isinstance(ref, dict) else ref)
    if len(names) > 1:
        named = ", ".join(sorted(map(str, names)))
        raise NotImplementedError(f"the local gateway serves one API; Api events name {named}")
    glob = dict(template.body.get("Globals", {}).get("Api", {}))
    name = next(iter(names), None)
    own = template.resources.get(name, {}).get("Properties", {}) if name else {}
    return {**glob, **own}


def _cors(spec: Any) -> Cors | None:
    if spec is None:
        return None
    if isinstance(spec, str):
        return Cors(_check_expression(spec, "Cors"))

    def expression(key: str) -> str | None:
        value = spec.get(key)
        return None if value is None else _check_expression(str(value), f"Cors.{key}")

    return Cors(
        allow_origin=_check_expression(spec["AllowOrigin"], "Cors.AllowOrigin"),
        allow_headers=expression("AllowHeaders"),
        allow_methods=expression("AllowMethods"),
        max_age=expression("MaxAge"),
        allow_credentials=spec.get("AllowCredentials") is True,
    )


def _gateway_response(kind: str, spec: dict[str, Any]) -> GatewayResponse:
    parameters = spec.get("ResponseParameters", {})
    if set(parameters) - {"Headers"}:
        raise NotImplementedError(f"GatewayResponses.{kind}: only Headers are emulated")
    headers = {
        name: _check_expression(str(value), f"GatewayResponses.{kind}.{name}")
        for name, value in parameters.get("Headers", {}).items()
    }
    status = spec.get("StatusCode")
    templates = {k: str(v) for k, v in spec.get("ResponseTemplates", {}).items()}
    return GatewayResponse(None if status is None else int(status), headers, templates)


def read_api_settings(template: Template, resolve: Resolve) -> ApiSettings:
    """`resolve` turns the template's intrinsics (`!Sub "'${CorsAllowOrigin}'"`) into values:
    `crm_local.provision.Stack.resolve`."""
    props = _api_properties(template)
    auth = props.get("Auth", {})
    responses = resolve(props.get("GatewayResponses", {}))
    return ApiSettings(
        cors=_cors(resolve(props.get("Cors"))),
        # SAM puts the default authorizer on the preflight too unless told not to.
        preflight_needs_token=bool(auth.get("DefaultAuthorizer"))
        and auth.get("AddDefaultAuthorizerToCorsPreflight", True) is not False,
        responses={kind: _gateway_response(kind, spec) for kind, spec in responses.items()},
    )
