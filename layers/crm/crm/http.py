"""The HTTP adapter between Chalice and the services.

`Routes.route` is the one way to declare an endpoint. Each family keeps its routes in a
`Routes` (a Chalice blueprint the API function registers); a route names the permission it
needs, and the adapter checks it before anything else, builds the caller from the
authorizer's claims, parses and validates the body into a pydantic model, turns domain errors
into JSON 4xx responses, and records what the OpenAPI document and the role x route test need.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from aws_lambda_powertools import Logger
from chalice.app import Blueprint, Request, Response
from pydantic import BaseModel, ValidationError

from crm import aws
from crm.auth import Caller, Permission, caller_from_claims
from crm.config import env
from crm.errors import (
    CrmError,
    FieldProblem,
    InvalidInput,
    PayloadTooLarge,
    Unavailable,
    validation_problems,
)
from crm.models import API_INPUT

logger = Logger(child=True)

M = TypeVar("M", bound=BaseModel)

DEFAULT_MAX_BODY_BYTES = 64 * 1024
_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")
RETRY_AFTER_S = 5  # past the SDK's retries, a busy dependency needs seconds, not milliseconds
JSON_HEADERS = {"Content-Type": "application/json"}


class QueryParam(NamedTuple):
    name: str
    description: str
    type: str = "string"
    minimum: int | None = None
    maximum: int | None = None
    default: int | None = None
    required: bool = False  # a required text parameter is never empty either
    pattern: str | None = None  # campaigns: D -- the text a parameter must match


# A response is one model, or one of several chosen by who calls (the OpenAPI document says
# `oneOf`, told apart by their `view` field).
ResponseModels = type[BaseModel] | tuple[type[BaseModel], ...]


class RouteDoc(NamedTuple):
    path: str
    method: str
    summary: str
    operation_id: str
    body: type[BaseModel] | None
    response: ResponseModels | None
    status: int
    permission: Permission | None  # None: a public route, no token needed
    query: tuple[QueryParam, ...] = ()
    errors: tuple[int, ...] = ()
    also_status: tuple[int, ...] = ()  # other success statuses, with the same body
    body_optional: bool = False  # the body may be left out (read as {})

    @property
    def public(self) -> bool:
        return self.permission is None


@dataclass
class ApiRequest:
    """What a view gets: the caller, the validated body, path and query parameters."""

    caller: Caller | None
    body: BaseModel | None
    path: dict[str, str]
    query: dict[str, str]
    declared: tuple[QueryParam, ...] = ()

    def model(self, kind: type[M]) -> M:
        assert isinstance(self.body, kind)
        return self.body

    @property
    def who(self) -> Caller:
        assert self.caller is not None, "public routes have no caller"
        return self.caller

    def required_query(self, name: str) -> str:
        """A text query parameter its route declares required: present and not empty."""
        assert any(p.name == name and p.required for p in self.declared)
        value = self.query.get(name)
        if not value:
            raise InvalidInput(f"{name} is required", [FieldProblem(name, "required")])
        return value

    def int_query(self, name: str) -> int:
        """A whole-number query parameter within the bounds its route declares."""
        param = next(p for p in self.declared if p.name == name)
        assert param.minimum is not None
        assert param.maximum is not None
        assert param.default is not None
        raw = self.query.get(name)
        if raw is None:
            return param.default
        # ASCII digits only: str.isdigit() also takes "²", which int() then refuses.
        if not _WHOLE_NUMBER.fullmatch(raw) or not param.minimum <= int(raw) <= param.maximum:
            raise InvalidInput(
                f"{name} must be a whole number from {param.minimum} to {param.maximum}",
                [FieldProblem(name, "out of range")],
            )
        return int(raw)


def _refuse_undeclared(params: Iterable[str], declared: tuple[QueryParam, ...]) -> None:
    """A query parameter the route does not take is a 400 naming it, as a body's unknown field
    is: a misspelt filter (`?chanel=app`) must not answer a 200 that ignored it."""
    names = [p.name for p in declared]
    unknown = sorted(set(params) - set(names))
    if not unknown:
        return
    import difflib  # the refusal's suggestions only: not on every cold start's path

    takes = f"this route takes {', '.join(names)}" if names else "this route takes none"
    problems = []
    for name in unknown:
        close = difflib.get_close_matches(name, names, n=1)
        problems.append(FieldProblem(
            name, f"not a parameter of this route (did you mean {close[0]}?)" if close
            else "not a parameter of this route"))  # fmt: skip
    raise InvalidInput(f"unknown query parameter {', '.join(unknown)}: {takes}", problems)


def error_body(error: CrmError) -> dict[str, Any]:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.fields:
        body["fields"] = [{"field": f.field, "message": f.message} for f in error.fields]
    return {"error": body}


def parse_body(raw: bytes | str | None, kind: type[M], max_bytes: int, optional: bool = False) -> M:
    """The body as `kind`; an `optional` one left out reads as `{}` (a route opts in: an empty
    PUT of a policy must not quietly reset it to its defaults)."""
    data = raw.encode() if isinstance(raw, str) else (raw or b"")
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"the request body exceeds {max_bytes} bytes")
    if not data.strip():
        if not optional:
            raise InvalidInput("a JSON request body is required", [FieldProblem("body", "missing")])
        data = b"{}"
    try:
        # Strict: a number or a boolean must be one in JSON ("10" and true are no count of
        # points); what JSON has no type for (times, dates, enums, money as "268.00") is
        # still read from its documented string form.
        return kind.model_validate_json(data, strict=True, context=API_INPUT)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise InvalidInput(
                "the request body is not valid JSON", validation_problems(exc)
            ) from None
        try:
            sent = json.loads(data)
        except ValueError:  # JSON pydantic reads and the json module does not: name as is
            sent = None
        raise InvalidInput("the request body is invalid", validation_problems(exc, sent)) from None


def json_response(payload: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    if isinstance(payload, BaseModel):
        text = payload.model_dump_json()
    else:
        text = json.dumps(payload, ensure_ascii=False, default=str)
    return Response(body=text, status_code=status, headers={**JSON_HEADERS, **(headers or {})})


def staff_token_issuer() -> str:
    """The staff user pool's issuer (template.yaml's STAFF_TOKEN_ISSUER): staff roles count only
    in its tokens (crm.auth.caller_from_claims)."""
    return env("STAFF_TOKEN_ISSUER")


def claims_of(request: Request) -> dict[str, Any] | None:
    authorizer = (request.context or {}).get("authorizer") or {}
    claims = authorizer.get("claims")
    return claims if isinstance(claims, dict) else None


class Routes:
    """One family's HTTP routes: a Chalice blueprint the API function registers."""

    def __init__(self, import_name: str) -> None:
        self.blueprint = Blueprint(import_name)
        self.docs: list[RouteDoc] = []

    def route(
        self,
        path: str,
        method: str,
        *,
        permission: Permission | None,
        summary: str,
        body: type[BaseModel] | None = None,
        response: ResponseModels | None = None,
        status: int = 200,
        query: tuple[QueryParam, ...] = (),
        errors: tuple[int, ...] = (),
        also_status: tuple[int, ...] = (),
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        body_optional: bool = False,
    ) -> Callable[[Callable[[ApiRequest], Any]], Callable[..., Response]]:
        """Declare an endpoint. `permission` is checked for the customer in the path (or, for
        a customer's token on a route without one, for the customer themself) before the
        body is read; services check finer rules (PII, the customers an event names)."""

        def register(view: Callable[[ApiRequest], Any]) -> Callable[..., Response]:
            def handle(**path_params: str) -> Response:
                request = self.blueprint.current_request
                try:
                    caller = None
                    if permission is not None:
                        caller = caller_from_claims(claims_of(request), staff_token_issuer())
                        subject = path_params.get("customer_id", caller.customer_id)
                        caller.require(permission, subject)
                    _refuse_undeclared(request.query_params or {}, query)
                    parsed = (
                        parse_body(request.raw_body, body, max_body_bytes, body_optional)
                        if body
                        else None
                    )
                    result = view(
                        ApiRequest(
                            caller=caller,
                            body=parsed,
                            path=dict(path_params),
                            query=dict(request.query_params or {}),
                            declared=query,
                        )
                    )
                except Unavailable as error:
                    # Not the request's fault (a metric still computing): the same request
                    # may succeed in a moment.
                    return json_response(
                        error_body(error), error.status, {"Retry-After": str(RETRY_AFTER_S)}
                    )
                except CrmError as error:
                    if error.status >= 500:  # pragma: no cover - domain errors are all 4xx
                        logger.exception("domain error with a server status")
                    return json_response(error_body(error), error.status)
                except Exception as exc:
                    if not aws.is_busy(exc):
                        raise
                    # A dependency was slow or throttled beyond the SDK's own retries: the
                    # request was fine and may well succeed in a moment, which a 500 would not
                    # tell the client.
                    logger.warning("dependency busy", extra={"error": type(exc).__name__})
                    return json_response(
                        error_body(Unavailable("a service this request needs is busy; "
                                               "try again shortly")),
                        Unavailable.status,
                        {"Retry-After": str(RETRY_AFTER_S)},
                    )  # fmt: skip
                if isinstance(result, Response):
                    return result
                return json_response(result, status)

            handle.__name__ = view.__name__
            # Bodies are always read as JSON, whatever Content-Type a client sent (curl's -d
            # says form-urlencoded): a body that is not JSON gets this API's own 400.
            self.blueprint.route(path, methods=[method], content_types=["*/*"])(handle)
            self.docs.append(
                RouteDoc(
                    path=path,
                    method=method,
                    summary=summary,
                    operation_id=view.__name__,
                    body=body,
                    response=response,
                    status=status,
                    permission=permission,
                    query=query,
                    errors=errors,
                    also_status=also_status,
                    body_optional=body_optional,
                )
            )
            return handle

        return register
