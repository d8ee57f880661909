"""Domain errors. Services raise them; the HTTP adapter turns them into 4xx responses (and a
busy dependency into a 503)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from pydantic import ValidationError


class FieldProblem(NamedTuple):
    field: str
    message: str


@dataclass
class CrmError(Exception):
    message: str
    fields: list[FieldProblem] = field(default_factory=list)

    status = 400
    code = "bad_request"

    def __str__(self) -> str:
        return self.message


class InvalidInput(CrmError):
    status = 400
    code = "invalid_input"


class Unauthorized(CrmError):
    status = 401
    code = "unauthorized"


class Forbidden(CrmError):
    status = 403
    code = "forbidden"


class NotFound(CrmError):
    status = 404
    code = "not_found"


class Conflict(CrmError):
    status = 409
    code = "conflict"


class WrongDataRegion(CrmError):
    """The customer's data belongs to another data region's stack: the client sends the
    request there (421 Misdirected Request: this server is not the one to answer it)."""

    status = 421
    code = "wrong_data_region"


class PayloadTooLarge(CrmError):
    status = 413
    code = "payload_too_large"


class Unavailable(CrmError):
    """Not the request's fault: a dependency is busy, so the same request may succeed soon."""

    status = 503
    code = "unavailable"


def validation_problems(exc: ValidationError) -> list[FieldProblem]:
    """Where and what, never the offending value: inputs may hold PII."""
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in err["loc"]) or "body"
        problems.append(FieldProblem(where, err["msg"]))
    return problems
