"""Word lists over a ticket's text (zh+en): a small negative-sentiment lexicon and the matching
escalation uses for it and for risk keywords.

The sentiment check is a lexicon, not a model: it counts strongly negative words and phrases,
which is enough to flag an angry message for escalation and says nothing finer. Categories come
from the trained classifier (`classifier.py`).
"""

from __future__ import annotations

from collections.abc import Iterable

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
