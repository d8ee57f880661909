"""API Gateway's part: match a request to the template's `Api` events and build the REST
proxy event (v1) that API Gateway would hand the function."""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from crm_local.provision import ACCOUNT
from crm_local.template import Template

STAGE = "v1"


@dataclass(frozen=True)
class ApiRoute:
    function: str
    path: str
    method: str
    authorized: bool

    @property
    def pattern(self) -> re.Pattern[str]:
        regex = re.sub(r"\\{(\w+)\\\+\\}", r"(?P<\1>.+)", re.escape(self.path))
        regex = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", regex)
        return re.compile(f"^{regex}$")

    @property
    def specificity(self) -> tuple[int, ...]:
        """API Gateway walks the path segment by segment, a literal before a {parameter}
        before a greedy {proxy+}."""
        return tuple(
            2 if part.endswith("+}") else 1 if part.startswith("{") else 0
            for part in self.path.split("/")
        )


def api_routes(template: Template) -> list[ApiRoute]:
    routes = []
    for spec in template.functions():
        for event in spec.events:
            if event.type != "Api":
                continue
            auth = event.properties.get("Auth", {})
            routes.append(
                ApiRoute(
                    function=spec.logical_id,
                    path=event.properties["Path"],
                    method=event.properties["Method"].upper(),
                    authorized=auth.get("Authorizer") != "NONE",
                )
            )
    return sorted(routes, key=lambda r: r.specificity)


def find_resource(routes: list[ApiRoute], path: str) -> tuple[str, dict[str, str]] | None:
    """The declared path (API Gateway's resource) a request's path falls on, and its path
    parameters. API Gateway picks the resource first, then the method: a method the resource
    lacks is an unknown route even when a less specific resource has it."""
    for route in routes:
        found = route.pattern.match(path)
        if found:
            return route.path, {k: unquote(v) for k, v in found.groupdict().items()}
    return None


def methods_of(routes: list[ApiRoute], resource: str) -> set[str]:
    return {route.method for route in routes if route.path == resource}


def match_route(
    routes: list[ApiRoute], method: str, path: str
) -> tuple[ApiRoute, dict[str, str]] | None:
    found = find_resource(routes, path)
    if found is None:
        return None
    resource, params = found
    candidates = [r for r in routes if r.path == resource]
    for wanted in (method.upper(), "ANY"):  # a declared method before ANY
        route = next((r for r in candidates if r.method == wanted), None)
        if route is not None:
            return route, params
    return None


def proxy_event(
    route: ApiRoute,
    path: str,
    path_params: Mapping[str, str],
    *,
    method: str,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    body: bytes | str | None = None,
    claims: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    headers = dict(headers or {})
    is_binary = False
    text: str | None
    if isinstance(body, bytes):
        try:
            text = body.decode()
        except UnicodeDecodeError:
            text, is_binary = base64.b64encode(body).decode(), True
    else:
        text = body
    context: dict[str, Any] = {
        "resourcePath": route.path,
        "httpMethod": method.upper(),
        "path": f"/{STAGE}{path}",
        "stage": STAGE,
        "requestId": str(uuid.uuid4()),
        "accountId": ACCOUNT,
        "apiId": "local",
        "protocol": "HTTP/1.1",
        "domainName": "localhost",
        "requestTimeEpoch": int(time.time() * 1000),
        "identity": {
            "sourceIp": "127.0.0.1",
            "userAgent": headers.get("User-Agent", headers.get("user-agent", "")),
        },
    }
    if claims is not None:
        context["authorizer"] = {"claims": dict(claims)}
    return {
        "resource": route.path,
        "path": path,
        "httpMethod": method.upper(),
        "headers": headers or None,
        "multiValueHeaders": {k: [v] for k, v in headers.items()} or None,
        "queryStringParameters": dict(query) if query else None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": dict(path_params) or None,
        "stageVariables": None,
        "requestContext": context,
        "body": text,
        "isBase64Encoded": is_binary,
    }
