from __future__ import annotations

from crm.segments.baskets import associations, recommend

FORMULA, DIAPERS, WIPES, LIPSTICK, SERUM = "formula", "diapers", "wipes", "lipstick", "serum"
CATEGORY = {FORMULA: "母婴", DIAPERS: "母婴", WIPES: "母婴", LIPSTICK: "美妆", SERUM: "美妆"}


def basket(*products: str) -> dict[str, str]:
    return {p: CATEGORY[p] for p in products}


BASKETS = (
    [basket(FORMULA, DIAPERS)] * 7 + [basket(FORMULA)] * 3 + [basket(DIAPERS, WIPES)] * 4
    + [basket(LIPSTICK, SERUM)] * 5 + [basket(SERUM)] * 1
)  # fmt: skip


def test_support_confidence_and_lift() -> None:
    table, categories, popular = associations(BASKETS)
    rule = next(r for r in table[FORMULA] if r.product == DIAPERS)
    assert rule.confidence == 0.7  # 70% of formula buyers also bought diapers
    assert rule.support == round(7 / 20, 4)
    assert rule.lift == round(0.7 / (11 / 20), 3)
    assert categories[SERUM] == "美妆"
    assert popular[0] == DIAPERS
    assert LIPSTICK not in {r.product for r in table[FORMULA]}  # never bought together


def test_recommendations_skip_what_was_bought_and_vary_categories() -> None:
    table, categories, popular = associations(BASKETS)
    recs = recommend(basket(FORMULA), table, categories, popular, limit=4)
    products = [r.product for r in recs]
    assert FORMULA not in products
    assert products[0] == DIAPERS
    assert recs[0].because_of == FORMULA
    assert "70%" in recs[0].reason
    assert sum(r.category == "母婴" for r in recs) <= 2  # at most half from one category
    assert {r.category for r in recs} == {"母婴", "美妆"}
