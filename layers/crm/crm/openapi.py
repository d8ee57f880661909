"""OpenAPI 3.1 document for client apps, built from the route table and the pydantic models."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from crm.http import QueryParam, ResponseModels, RouteDoc

_REF = "#/components/schemas/{model}"
_STATUS_TEXT = {
    400: "Invalid input: the error names each body field or query parameter that is wrong, "
    "or one the route does not take",
    401: "No or invalid token",
    403: "The caller's role may not do this",
    404: "Unknown id",
    409: "Conflict with the current state (stale version, taken identity, ...)",
    413: "Payload too large",
    421: "The customer belongs to another data region: send the request to that region's API",
    503: "A service the request needs is busy: send it again after Retry-After seconds",
}


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "fields": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "field": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        },
                    },
                },
            }
        },
    }


def _query_schema(q: QueryParam) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": q.type}
    if q.required and q.type == "string":
        schema["minLength"] = 1
    for key, value in (("minimum", q.minimum), ("maximum", q.maximum), ("default", q.default),
                       ("pattern", q.pattern)):  # fmt: skip
        if value is not None:
            schema[key] = value
    return schema


def _models(response: ResponseModels | None) -> tuple[type[BaseModel], ...]:
    if response is None:
        return ()
    return response if isinstance(response, tuple) else (response,)


def _response_schema(
    response: ResponseModels, refs: Mapping[Any, dict[str, Any]]
) -> dict[str, Any]:
    if not isinstance(response, tuple):
        return dict(refs[(response, "serialization")])
    schema: dict[str, Any] = {"oneOf": [refs[(m, "serialization")] for m in response]}
    # Views of one thing for different callers each name themselves in `view` (a literal with
    # a default): clients and generators tell them apart by it.
    kinds = [m.model_fields["view"].default if "view" in m.model_fields else None for m in response]
    if all(isinstance(k, str) for k in kinds):
        schema["discriminator"] = {
            "propertyName": "view",
            "mapping": {
                str(k): refs[(m, "serialization")]["$ref"]
                for k, m in zip(kinds, response, strict=True)
            },
        }
    return schema


def build_openapi(routes: Sequence[RouteDoc], title: str, version: str) -> dict[str, Any]:
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = []
    for r in routes:
        if r.body:
            wanted.append((r.body, "validation"))
        wanted += [(m, "serialization") for m in _models(r.response)]
    refs, defs = models_json_schema(list(dict.fromkeys(wanted)), ref_template=_REF)
    schemas = dict(defs.get("$defs", {}))
    schemas["Error"] = _error_schema()

    paths: dict[str, dict[str, Any]] = {}
    for r in sorted(routes, key=lambda r: (r.path, r.method)):
        op: dict[str, Any] = {"operationId": r.operation_id, "summary": r.summary}
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"{(\w+)}", r.path)
        ]
        params += [
            {"name": q.name, "in": "query", "required": q.required, "description": q.description,
             "schema": _query_schema(q)}
            for q in r.query
        ]  # fmt: skip
        if params:
            op["parameters"] = params
        if r.body:
            op["requestBody"] = {
                "required": not r.body_optional,
                "content": {"application/json": {"schema": refs[(r.body, "validation")]}},
            }
        ok: dict[str, Any] = {"description": "OK"}
        if r.response:
            ok["content"] = {"application/json": {"schema": _response_schema(r.response, refs)}}
        op["responses"] = {str(code): ok for code in (r.status, *r.also_status)}
        # A body or a query parameter the adapter validates can be refused with 400, and so
        # can a query parameter the route does not take (crm.http: every route).
        statuses = set(r.errors) | {400} | ({401, 403, 503} if not r.public else set())
        for code in sorted(statuses):
            op["responses"][str(code)] = {
                "description": _STATUS_TEXT[code],
                "content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}},
            }
            if code == 503:
                op["responses"][str(code)]["headers"] = {
                    "Retry-After": {"description": "seconds", "schema": {"type": "integer"}}
                }
        op["security"] = [] if r.public else [{"cognito": []}]
        paths.setdefault(r.path, {})[r.method.lower()] = op

    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "cognito": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "Cognito ID token; roles come from cognito:groups",
                }
            },
        },
    }
