"""Word lists over a ticket's text (zh+en): the default keyword classifier, risk keywords and a
small negative-sentiment lexicon.

The classifier here is the stand-in until the trained one (character n-grams, shipped weights)
is wired in through the `Classifier` Protocol. The sentiment check is a lexicon, not a model:
it counts strongly negative words and phrases, which is enough to flag an angry message for
escalation and says nothing finer.
"""

from __future__ import annotations

from collections.abc import Iterable

from crm.tickets.models import TicketCategory

_C = TicketCategory
CATEGORY_KEYWORDS: dict[TicketCategory, tuple[str, ...]] = {
    _C.SERVICE_COMPLAINT: (
        "投诉", "态度", "客服", "不理", "没人回", "complain", "complaint", "rude", "no one replied",
    ),
    _C.LOGISTICS: (
        "物流", "快递", "没收到", "未收到", "发货", "配送", "丢件", "运输", "单号",
        "delivery", "shipping", "shipped", "tracking", "courier", "parcel", "lost",
    ),
    _C.QUALITY: (
        "质量", "破损", "坏了", "瑕疵", "掉色", "开线", "假货", "与描述不符",
        "defect", "broken", "damaged", "fake", "not as described", "quality",
    ),
    _C.SIZE_FIT: ("尺码", "偏大", "偏小", "太大", "太小", "size", "fit", "too small", "too big"),
    _C.RETURN_REFUND: (
        "退货", "退款", "换货", "退钱", "return", "refund", "exchange",
    ),
    _C.PAYMENT_INVOICE: (
        "支付", "付款", "发票", "扣款", "重复扣", "payment", "invoice", "charged", "receipt",
    ),
    _C.ACCOUNT_POINTS: (
        "积分", "会员", "优惠券", "账号", "登录", "points", "member", "coupon", "account", "login",
    ),
    _C.PRESALE: (
        "有货", "库存", "补货", "什么时候有", "材质", "stock", "restock", "in stock", "material",
    ),
}  # fmt: skip

NEGATIVE_WORDS: tuple[str, ...] = (
    "垃圾", "骗子", "欺骗", "恶心", "气死", "太差", "差评", "失望", "愤怒", "无语", "坑人",
    "再也不买",
    "scam", "fraud", "terrible", "awful", "worst", "disgusting", "furious", "angry",
    "unacceptable", "ridiculous", "never again", "cheated",
)  # fmt: skip


def hits(text: str, words: Iterable[str]) -> list[str]:
    """The words of a list that occur in the text (case-insensitively), each once, in order."""
    lowered = text.casefold()
    return [word for word in dict.fromkeys(words) if word.casefold() in lowered]


class KeywordClassifier:
    """The category whose keywords occur most often; `other` when none does. Ties go to the
    earlier category in CATEGORY_KEYWORDS (a complaint about a delivery is a complaint)."""

    def classify(self, text: str) -> tuple[str, float]:
        best, best_hits, total = TicketCategory.OTHER, 0, 0
        for category, words in CATEGORY_KEYWORDS.items():
            found = len(hits(text, words))
            total += found
            if found > best_hits:
                best, best_hits = category, found
        if not best_hits:
            return TicketCategory.OTHER.value, 0.0
        return best.value, round(best_hits / total, 3)
