"""Co-purchase associations between products, at the customer level: "70% of the customers
who bought baby formula also bought diapers" is confidence(formula -> diapers) = 0.7."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from itertools import combinations

from crm.segments.fitted import Association
from crm.segments.models import Recommendation

MIN_PAIR_CUSTOMERS = 3  # a pair seen on fewer customers is noise
MAX_PRODUCTS_PER_CUSTOMER = 50  # pairs grow with the square; the rest adds little
TOP_PER_PRODUCT = 20


def associations(baskets: Iterable[dict[str, str]]) -> tuple[
    dict[str, list[Association]], dict[str, str], list[str]
]:  # fmt: skip
    """(associations per product, category per product, products by popularity)."""
    singles: Counter[str] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    categories: dict[str, str] = {}
    customers = 0
    for basket in baskets:
        if not basket:
            continue
        customers += 1
        categories.update(basket)
        products = sorted(basket)[:MAX_PRODUCTS_PER_CUSTOMER]
        singles.update(products)
        pairs.update(combinations(products, 2))
    found: dict[str, list[Association]] = {}
    for (a, b), together in pairs.items():
        if together < MIN_PAIR_CUSTOMERS:
            continue
        support = together / customers
        for x, y in ((a, b), (b, a)):
            confidence = together / singles[x]
            lift = confidence / (singles[y] / customers)
            found.setdefault(x, []).append(
                Association(
                    product=y,
                    support=round(support, 4),
                    confidence=round(confidence, 4),
                    lift=round(lift, 3),
                )
            )
    for product, rules in found.items():
        rules.sort(key=lambda r: (r.lift, r.confidence), reverse=True)
        found[product] = rules[:TOP_PER_PRODUCT]
    popular = [p for p, _ in singles.most_common(100)]
    return found, categories, popular


def recommend(
    bought: dict[str, str],
    table: dict[str, list[Association]],
    categories: dict[str, str],
    popular: list[str],
    limit: int,
) -> list[Recommendation]:
    """Products not bought yet, strongest association first, no more than half of them from
    one category; popular products fill what associations leave empty."""
    best: dict[str, Recommendation] = {}
    for product in bought:
        for rule in table.get(product, []):
            if rule.product in bought:
                continue
            current = best.get(rule.product)
            strength = (current.lift or 0, current.confidence or 0) if current else (0.0, 0.0)
            if current is None or (rule.lift, rule.confidence) > strength:
                best[rule.product] = Recommendation(
                    product=rule.product,
                    category=categories.get(rule.product, ""),
                    lift=rule.lift,
                    confidence=rule.confidence,
                    because_of=product,
                    reason=f"{rule.confidence:.0%} of the customers who bought {product} "
                    f"also bought {rule.product}",
                )
    ranked = sorted(best.values(), key=lambda r: (r.lift or 0, r.confidence or 0), reverse=True)
    ranked += [
        Recommendation(product=p, category=categories.get(p, ""), reason="popular")
        for p in popular
        if p not in bought and p not in best
    ]
    per_category = max(1, math.ceil(limit / 2))
    chosen: list[Recommendation] = []
    taken: Counter[str] = Counter()
    for rec in ranked:
        if taken[rec.category] >= per_category:
            continue
        chosen.append(rec)
        taken[rec.category] += 1
        if len(chosen) == limit:
            break
    return chosen
