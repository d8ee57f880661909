"""Message templates: zh and en bodies per channel, rendered in jinja2's sandbox.

Templates are data (`PUT /campaigns/templates/{template_id}`), written by marketers, so they
render in a `SandboxedEnvironment` (no attribute access to Python internals) with
`StrictUndefined` (a missing variable is an error, never an empty string in a customer's
message). They are checked when saved: a syntax error, a variable that is not one of
`VARIABLES`, or anything `template_grammar` does not allow (what could make a message of any
size or run without end) is a 400 naming the channel, the language and the problem. What can
still fail at render time (`coupon.code` when the request carries no coupon) makes that one
message `failed` with the reason; it never stops the others.
"""

import time as _time
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal, NamedTuple

from pydantic import Field, StringConstraints

from crm.auth import Caller, Permission
from crm.campaigns.dispatch_store import DispatchStore
from crm.campaigns.models import MessageChannel
from crm.campaigns.template_grammar import template_problem
from crm.clock import Clock
from crm.errors import FieldProblem, InvalidInput, NotFound
from crm.models import NOT_BLANK, Output, StrictInput

if TYPE_CHECKING:
    from jinja2.sandbox import SandboxedEnvironment

Locale = Literal["zh", "en"]
LOCALES: tuple[Locale, ...] = ("zh", "en")
# What a template may use; each is filled in per message (docs/campaigns.md).
VARIABLES = {
    "name": "the customer's name, masked (张*, J***): never the full name",
    "products": "recommended products, a list of {product, category, reason}",
    "coupon": "the issued coupon, when the request has an offer: {{ coupon }} prints its code; "
    "coupon.code, coupon.description, coupon.expires_at",
    "unsubscribe_url": "the link that withdraws the channel's marketing consent",
}
MAX_ID_BYTES = 1024


class CouponValue(NamedTuple):
    """The issued coupon as a template sees it: `{{ coupon }}` prints the code (a marketer's
    first guess; it printed the dict the issuer answered)."""

    code: str
    description: str
    expires_at: str | None

    def __str__(self) -> str:
        return self.code


# A template seen by a worker is kept this long: a 1M send reads it once a minute, not a
# million times; an edit reaches the workers within a minute.
CACHE_S = 60.0


class TemplateBody(StrictInput):
    subject: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, description="email subject, push title"
    )
    body: Annotated[str, StringConstraints(min_length=1, max_length=4000, pattern=NOT_BLANK)]


class LocalizedBodies(StrictInput):
    zh: TemplateBody
    en: TemplateBody

    def get(self, locale: Locale) -> TemplateBody:
        return self.zh if locale == "zh" else self.en


class MessageTemplate(StrictInput):
    description: Annotated[str, StringConstraints(max_length=200)] | None = None
    channels: dict[MessageChannel, LocalizedBodies] = Field(
        min_length=1, description="per channel, the zh and en bodies"
    )


class StoredTemplate(Output):
    template_id: str
    template: MessageTemplate
    updated_at: datetime
    updated_by: str


class Rendered(Output):
    locale: Locale
    subject: str | None
    body: str


class RenderFailed(Exception):
    """This message cannot be rendered; the text names the problem, never a value."""


@cache
def _env() -> "SandboxedEnvironment":
    # jinja2 is loaded with the first template a process checks or renders: the API's cold
    # start (which registers the template routes) does not pay for it.
    from jinja2 import StrictUndefined, TemplateRuntimeError
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import SandboxedEnvironment

    class BoundedSandbox(SandboxedEnvironment):
        """The sandbox, refusing what could make a value of any size (a template saved before
        `template_grammar` checked it): intercepted, these are never folded when a template
        is compiled either."""

        intercepted_binops = frozenset({"**", "*", "%"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            raise SecurityError(f"{operator} is not allowed in a message template")

    def printed(value: Any) -> Any:
        """What a `{{ ... }}` prints: never None (a coupon the request has none of printed
        'None' to customers), never a structure (a list or a mapping printed as Python)."""
        if value is None:
            raise TemplateRuntimeError("a variable printed nothing (None): is it given here?")
        if isinstance(value, (list, dict, set)):
            raise TemplateRuntimeError("a variable printed a list or a mapping: print its fields")
        return value

    return BoundedSandbox(undefined=StrictUndefined, autoescape=False, finalize=printed)


def _problems(template: MessageTemplate) -> list[FieldProblem]:
    from jinja2 import TemplateError, meta

    problems = []
    for channel, bodies in template.channels.items():
        for locale in LOCALES:
            body = bodies.get(locale)
            for part in ("subject", "body"):
                text = getattr(body, part)
                if text is None:
                    continue
                where = f"channels.{channel}.{locale}.{part}"
                try:
                    parsed = _env().parse(text)
                except TemplateError as exc:
                    line = getattr(exc, "lineno", None)
                    problems.append(FieldProblem(where, f"syntax error (line {line}): {exc}"))
                    continue
                # Before anything compiles it: jinja folds constants while it compiles.
                unsafe = template_problem(parsed)
                if unsafe:
                    problems.append(FieldProblem(where, unsafe))
                    continue
                unknown = meta.find_undeclared_variables(parsed) - set(VARIABLES)
                if unknown:
                    problems.append(FieldProblem(
                        where, f"unknown variable(s) {', '.join(sorted(unknown))}; "
                        f"known: {', '.join(sorted(VARIABLES))}",
                    ))  # fmt: skip
    return problems


def variables_used(template: MessageTemplate, channel: MessageChannel) -> set[str]:
    from jinja2 import meta

    used: set[str] = set()
    bodies = template.channels.get(channel)
    for body in (bodies.zh, bodies.en) if bodies else ():
        for text in (body.subject, body.body):
            if text is not None:
                used |= meta.find_undeclared_variables(_env().parse(text))
    return used


def send_problem(
    template_id: str, stored: StoredTemplate | None, channel: MessageChannel, coupon: bool
) -> str | None:
    """Why messages of `template_id` on `channel` cannot be made, or None: caught when a send
    or a journey is defined, not as every one of its messages failing. `coupon`: whether the
    send issues one (a template that prints a coupon needs it)."""
    if stored is None:
        return f"no template {template_id}: store it with PUT /campaigns/templates/{template_id}"
    if channel not in stored.template.channels:
        return f"template {template_id} has no {channel} body"
    if not coupon and _needs_coupon(stored.template, channel):
        return f"template {template_id} prints a coupon and no coupon_offer_id issues one"
    return None


_SAMPLE = {"name": "张*", "products": [{"product": "p", "category": "c", "reason": "r"}],
           "unsubscribe_url": "https://example.invalid/u"}  # fmt: skip


def _needs_coupon(template: MessageTemplate, channel: MessageChannel) -> bool:
    """Whether a message of `template` fails without a coupon and renders with one: a coupon
    printed outside `{% if coupon %}` (tried on sample values, in each language)."""
    if "coupon" not in variables_used(template, channel):
        return False
    for locale in LOCALES:
        try:
            render(template, channel, locale, {**_SAMPLE, "coupon": None})
        except RenderFailed:
            try:
                render(template, channel, locale,
                       {**_SAMPLE, "coupon": CouponValue("C", "d", None)})  # fmt: skip
            except RenderFailed:
                continue  # it fails for another reason than the coupon
            return True
    return False


def render(
    template: MessageTemplate, channel: MessageChannel, locale: Locale, values: Mapping[str, Any]
) -> Rendered:
    from jinja2 import TemplateError

    bodies = template.channels.get(channel)
    if not bodies:
        raise RenderFailed(f"the template has no body for channel {channel}")
    chosen = locale
    body = bodies.get(locale)
    try:
        subject = _env().from_string(body.subject).render(values) if body.subject else None
        text = _env().from_string(body.body).render(values)
    except TemplateError as exc:
        # jinja2's messages name the variable or attribute, not the values.
        raise RenderFailed(f"template error: {exc.message or type(exc).__name__}") from None
    except Exception as exc:  # a filter on a value of the wrong type, ...
        raise RenderFailed(f"template error: {type(exc).__name__}") from None
    return Rendered(locale=chosen, subject=subject, body=text)


class Templates:
    def __init__(self, store: DispatchStore, clock: Clock) -> None:
        self._store, self._clock = store, clock
        self._cache: dict[str, tuple[float, StoredTemplate | None]] = {}

    def save(self, caller: Caller, template_id: str, template: MessageTemplate) -> StoredTemplate:
        caller.require(Permission.EDIT_CAMPAIGNS)
        _check_id(template_id)
        problems = _problems(template)
        if problems:
            raise InvalidInput("the template does not render", problems)
        stored = StoredTemplate(template_id=template_id, template=template,
                                updated_at=self._clock(), updated_by=caller.subject)  # fmt: skip
        self._store.save_template(template_id, stored.model_dump_json())
        self._cache.pop(template_id, None)
        return stored

    def get(self, caller: Caller, template_id: str) -> StoredTemplate:
        caller.require(Permission.READ_CAMPAIGNS)
        _check_id(template_id)
        found = self._read(template_id)
        if found is None:
            raise NotFound(f"no template {template_id}")
        return found

    def load(self, template_id: str) -> StoredTemplate | None:
        """For dispatch: the template, as read within the last minute."""
        now = _time.monotonic()
        cached = self._cache.get(template_id)
        if cached is not None and now - cached[0] < CACHE_S:
            return cached[1]
        found = self._read(template_id)
        self._cache[template_id] = (now, found)
        return found

    def _read(self, template_id: str) -> StoredTemplate | None:
        body = self._store.template(template_id)
        return None if body is None else StoredTemplate.model_validate_json(body)


def _check_id(template_id: str) -> None:
    # Any text names a template (journeys and sends refer to it); DynamoDB bounds a key.
    if not template_id or len(template_id.encode()) > MAX_ID_BYTES:
        raise InvalidInput("not a template id", [FieldProblem(
            "template_id", f"1 to {MAX_ID_BYTES} bytes")])  # fmt: skip
