"""Feedback to product and supply chain: complaint categories, return reasons and risk
keywords counted by SKU and by product category, month by month, for analysts to chart.

Fed by after-sales cases (their reason code, and the risk keywords of the customer's note)
and by complaint and after-sales tickets that name a SKU or a product category (their
classified category and the risk keywords of the customer's first message, counted in the
ticket's own opening transaction: `ticket_feedback`).
Counters are write-sharded (crm.tickets.aftersales_store.FEEDBACK_SHARDS) and each source is
counted once, whatever retries deliver it again.
"""

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from crm.auth import Caller, Permission
from crm.clock import Clock
from crm.errors import FieldProblem, InvalidInput
from crm.models import CATEGORY_MAX, Output, category_of
from crm.tickets.aftersales_store import AfterSalesStore, FeedbackCount
from crm.tickets.models import TicketCategory
from crm.tickets.records import TicketRecord

# Signals that a complaint may go public or legal (the escalation rules use the same kind of
# list): counted per SKU so that product sees which goods draw them. Matched case-insensitively.
RISK_KEYWORDS = (
    "12315", "消协", "律师", "起诉", "法院", "媒体", "曝光", "投诉到平台", "黑猫投诉",
    "工商", "假货", "chargeback", "lawyer", "lawsuit", "sue", "media", "fraud", "scam",
)  # fmt: skip
_RISK = re.compile(
    "|".join(
        rf"\b{re.escape(k)}\b" if k.isascii() and k.isalpha() else re.escape(k)
        for k in RISK_KEYWORDS
    ),
    re.IGNORECASE,
)
MAX_RISK_KEYWORDS = 10  # per source: keeps one transaction far below 100 items
PERIOD_PATTERN = r"^(19|2[0-9])[0-9]{2}-(0[1-9]|1[0-2])$"
PERIOD = re.compile(PERIOD_PATTERN)

Scope = Literal["sku", "category"]
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:\-]{1,128}$")]


def risk_keywords(text: str | None) -> list[str]:
    """The risk keywords a text carries, lowercased, each once, in the order of the list."""
    if not text:
        return []
    found = {m.group(0).lower() for m in _RISK.finditer(text)}
    return [k.lower() for k in RISK_KEYWORDS if k.lower() in found]


def period_of(at: datetime) -> str:
    return f"{at:%Y-%m}"


def feedback_counts(
    *,
    sku: str | None,
    product_category: str | None,
    at: datetime,
    category: str | None = None,
    reason: str | None = None,
    risk: Iterable[str] = (),
) -> list[FeedbackCount]:
    """The counters one piece of feedback adds to: each dimension under the SKU and under the
    product category it names."""
    dimensions = [("total", "all"), ("category", category), ("reason", reason)]
    dimensions += [("risk", k) for k in list(dict.fromkeys(risk))[:MAX_RISK_KEYWORDS]]
    scopes = [("sku", sku), ("category", product_category)]
    return [
        FeedbackCount(scope, value, period_of(at), dimension, name)
        for scope, value in scopes
        if value
        for dimension, name in dimensions
        if name
    ]


# The ticket categories that say something about the goods or their delivery: complaints
# (quality, fit, delivery, the service around them) and after-sales (returns and refunds).
# Questions (presale, account, payment) are no product feedback.
FEEDBACK_CATEGORIES = frozenset({
    TicketCategory.QUALITY, TicketCategory.SIZE_FIT, TicketCategory.LOGISTICS,
    TicketCategory.RETURN_REFUND, TicketCategory.SERVICE_COMPLAINT,
})  # fmt: skip


def ticket_feedback(ticket: TicketRecord, text: str) -> tuple[str, list[FeedbackCount]] | None:
    """What a newly opened ticket counts for its product (source `ticket:<id>`, counted once):
    its category and the risk keywords of the customer's words, under its SKU and product
    category; None when it is no product feedback or names no product."""
    if ticket.category not in FEEDBACK_CATEGORIES:
        return None
    counts = feedback_counts(sku=ticket.sku, product_category=ticket.product_category,
                             at=ticket.opened_at, category=ticket.category.value,
                             risk=risk_keywords(text))  # fmt: skip
    return (f"ticket:{ticket.ticket_id}", counts) if counts else None


class Tally(Output):
    name: str
    count: int


class ProductFeedback(Output):
    scope: Scope
    value: str
    period: str
    complaint_categories: list[Tally] = Field(description="from classified tickets, most first")
    return_reasons: list[Tally] = Field(description="from after-sales cases, most first")
    risk_keywords: list[Tally]
    total: int = Field(description="pieces of feedback counted (each source once)")


class ProductFeedbackBook:
    def __init__(self, store: AfterSalesStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def record_feedback(
        self,
        source_id: str,
        *,
        sku: str | None,
        product_category: str | None,
        at: datetime,
        category: str | None = None,
        reason: str | None = None,
        risk: Iterable[str] = (),
    ) -> bool:
        """Count one ticket's or case's feedback once (`source_id`, e.g. `ticket:<id>`);
        False when it was counted before."""
        counts = feedback_counts(sku=sku, product_category=product_category, at=at,
                                 category=category, reason=reason, risk=risk)  # fmt: skip
        if not counts or not (category or reason or risk):
            return False
        return self.store.record_feedback(source_id, counts)

    def read(
        self, caller: Caller, sku: str | None, product_category: str | None, period: str | None
    ) -> ProductFeedback:
        caller.require(Permission.READ_FEEDBACK)
        if (sku is None) == (product_category is None):
            raise InvalidInput(
                "give either sku or category",
                [FieldProblem("sku", "exactly one of sku and category")],
            )
        month = period or period_of(self.clock())
        if not PERIOD.fullmatch(month):
            raise InvalidInput("period is a month, 2026-11", [FieldProblem("period", "yyyy-mm")])
        # An empty `?sku=` is given, and not an id: a 400, never a fall-through.
        scope: Scope = "sku" if sku is not None else "category"
        if sku is not None:
            value: str | None = sku if re.fullmatch(r"[A-Za-z0-9._:\-]{1,128}", sku) else None
            if value is None:
                raise InvalidInput("sku is not an id", [FieldProblem("sku", "not an id")])
        else:
            # A category is named as the order events name it (母婴 as much as tea).
            value = category_of(product_category or "")
            if value is None:
                raise InvalidInput(
                    f"category is 1 to {CATEGORY_MAX} characters, not only spaces, no control "
                    "characters",
                    [FieldProblem("category", "not a category")],
                )
        totals = self.store.feedback(scope, value, month)

        def tallies(dimension: str) -> list[Tally]:
            found = [Tally(name=n, count=c) for (d, n), c in totals.items() if d == dimension]
            return sorted(found, key=lambda t: (-t.count, t.name))

        categories, reasons = tallies("category"), tallies("reason")
        return ProductFeedback(
            scope=scope,
            value=value,
            period=month,
            complaint_categories=categories,
            return_reasons=reasons,
            risk_keywords=tallies("risk"),
            total=totals.get(("total", "all"), 0),
        )
