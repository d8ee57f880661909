"""Domain errors. Services raise them; the HTTP adapter turns them into 4xx responses (and a
busy dependency into a 503)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

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


def validation_problems(exc: ValidationError, sent: Any = None) -> list[FieldProblem]:
    """Where and what, never the offending value: inputs may hold PII. With `sent` (the
    input as the client sent it), each place is named as in that input: pydantic names a
    tagged union's member by its tag (`events.0.order_paid.amount`), which is no key of the
    body (`events.0.amount`)."""
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = _as_sent(err["loc"], sent) if sent is not None else err["loc"]
        problems.append(FieldProblem(".".join(str(p) for p in loc) or "body", err["msg"]))
    return problems


def _as_sent(loc: tuple[int | str, ...], sent: Any) -> list[int | str]:
    """`loc` without the tags of tagged unions: a step that is no key of the object it walks
    but is one of its values (the tag, as the object's discriminator field holds it)."""
    path: list[int | str] = []
    node = sent
    for step in loc:
        if isinstance(node, dict):
            if step not in node and isinstance(step, str) and step in node.values():
                continue  # the union's tag
            node = node.get(step) if isinstance(step, str) else None
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            node = node[step]
        else:
            node = None
        path.append(step)
    return path
