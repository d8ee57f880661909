"""Ticket text -> one of nine categories, Chinese, English or both mixed.

The model is a TF-IDF of character n-grams (sklearn's `char_wb` analyzer: no word segmenter
is needed for Chinese, and mixed "我的order还没ship" reads like either language) and a
multinomial logistic regression, trained by `bench/classifier.py` on the corpus beside this
module and exported to `data/classifier.json`. It is applied here in pure Python, so the API
never loads numpy or scikit-learn (an import contract and tests/unit/tickets check it), and a
test checks these scores equal scikit-learn's to 1e-9.

Below `threshold` confidence the answer is `other`: a wrong confident category routes a ticket
to the wrong queue and starts the wrong SLA, while `other` sends it to a person who sorts it.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

WEIGHTS = Path(__file__).parent / "data" / "classifier.json"
OTHER = "other"
# The nine categories of the tickets contract (T1's TicketCategory has the same values).
CATEGORIES = (
    "logistics",
    "quality",
    "size_fit",
    "return_refund",
    "payment_invoice",
    "account_points",
    "presale",
    "service_complaint",
    OTHER,
)
_RUNS_OF_SPACE = re.compile(r"\s\s+")  # sklearn's _white_spaces


def char_wb_ngrams(text: str, low: int, high: int) -> list[str]:
    """sklearn's `char_wb` analyzer (lowercased): n-grams inside words padded with a space."""
    grams: list[str] = []
    for word in _RUNS_OF_SPACE.sub(" ", text.lower()).split():
        padded = f" {word} "
        size = len(padded)
        for n in range(low, high + 1):
            offset = 0
            grams.append(padded[offset : offset + n])
            while offset + n < size:
                offset += 1
                grams.append(padded[offset : offset + n])
            if offset == 0:  # a word shorter than n counts once
                break
    return grams


@dataclass(frozen=True)
class Classification:
    category: str
    confidence: float  # the model's probability of `category` (of its best guess, for `other`)
    scores: dict[str, float]  # every category's probability


class TextClassifier:
    """Applies exported weights; `classify(text) -> (category, confidence)` as tickets ask."""

    def __init__(self, weights: dict[str, Any]) -> None:
        self.labels: list[str] = list(weights["labels"])
        self.threshold = float(weights["threshold"])
        self.low, self.high = (int(n) for n in weights["ngram_range"])
        self.sublinear_tf = bool(weights["sublinear_tf"])
        # One row per n-gram: its idf, then its weight for each label (one dict lookup each).
        self.rows: dict[str, list[float]] = weights["features"]
        self.intercept: list[float] = [float(b) for b in weights["intercept"]]

    @classmethod
    def shipped(cls) -> TextClassifier:
        return _shipped()

    def probabilities(self, text: str) -> list[float]:
        counts = Counter(g for g in char_wb_ngrams(text, self.low, self.high) if g in self.rows)
        values: dict[str, float] = {}
        for gram, count in counts.items():
            tf = 1.0 + math.log(count) if self.sublinear_tf else float(count)
            values[gram] = tf * self.rows[gram][0]
        norm = math.sqrt(sum(v * v for v in values.values()))
        logits = list(self.intercept)
        if norm > 0:
            for gram, value in values.items():
                row = self.rows[gram]
                x = value / norm
                for k in range(len(logits)):
                    logits[k] += row[k + 1] * x
        top = max(logits)
        exps = [math.exp(z - top) for z in logits]
        total = sum(exps)
        return [e / total for e in exps]

    def explain(self, text: str) -> Classification:
        probs = self.probabilities(text)
        best = max(range(len(probs)), key=probs.__getitem__)
        category = self.labels[best] if probs[best] >= self.threshold else OTHER
        return Classification(category, probs[best], dict(zip(self.labels, probs, strict=True)))

    def classify(self, text: str) -> tuple[str, float]:
        found = self.explain(text)
        return found.category, found.confidence


@cache
def _shipped() -> TextClassifier:
    return TextClassifier(json.loads(WEIGHTS.read_text(encoding="utf-8")))


def classify(text: str) -> tuple[str, float]:
    """The shipped model's category and confidence for a customer's message."""
    return _shipped().classify(text)
