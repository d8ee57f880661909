"""The classifier the API applies in pure Python is scikit-learn's model, to the bit that
matters, and the shipped weights are the ones the training script makes from the corpus."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline

from bench import classifier as training
from crm.tickets.classifier import CATEGORIES, WEIGHTS, TextClassifier, char_wb_ngrams

NINE = {
    "logistics", "quality", "size_fit", "return_refund", "payment_invoice", "account_points",
    "presale", "service_complaint", "other",
}  # fmt: skip


@pytest.fixture(scope="module")
def held_out() -> tuple[Pipeline, list[training.Example]]:
    train, test = training.split(training.read_corpus())
    return training.fit(train), test


def test_the_labels_are_the_nine_ticket_categories() -> None:
    assert set(CATEGORIES) == NINE
    assert set(json.loads(WEIGHTS.read_text())["labels"]) == NINE
    assert {e.label for e in training.read_corpus()} == NINE


def test_the_corpus_is_several_hundred_distinct_messages_in_both_languages() -> None:
    corpus = training.read_corpus()
    texts = [e.text for e in corpus]
    assert len(texts) >= 300
    assert len(set(texts)) == len(texts)
    chinese = [t for t in texts if any("\u4e00" <= ch <= "\u9fff" for ch in t)]
    english = [t for t in texts if t.isascii()]
    mixed = [t for t in chinese if any(ch.isascii() and ch.isalpha() for ch in t)]
    assert len(chinese) >= 100
    assert len(english) >= 100
    assert len(mixed) >= 30
    for label in NINE:
        assert sum(1 for e in corpus if e.label == label) >= 30


@pytest.mark.parametrize(
    "text",
    ["我的order还没ship", "  Where   is my\tparcel? ", "退款", "a", "", "é ü ÄÖ", "x  y z 12315"],
)
def test_the_ngrams_are_sklearns_char_wb(text: str) -> None:
    analyzer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3)).build_analyzer()
    assert char_wb_ngrams(text, 1, 3) == analyzer(text)


def test_pure_python_scores_equal_sklearns_on_the_held_out_split(
    held_out: tuple[Pipeline, list[training.Example]],
) -> None:
    model, test = held_out
    applier = TextClassifier(training.export(model, "test"))
    texts = [e.text for e in test] + ["", "???", "Ünïcödé 退货 return"]
    expected = model.predict_proba(texts)
    labels = list(model.classes_)
    assert applier.labels == labels
    for text, row in zip(texts, expected, strict=True):
        ours = applier.probabilities(text)
        assert ours == pytest.approx(list(row), abs=1e-9, rel=0)
        best = max(range(len(ours)), key=ours.__getitem__)
        assert applier.classify(text)[0] == (
            labels[best] if ours[best] >= applier.threshold else "other"
        )


def test_the_shipped_weights_are_what_the_script_makes_from_the_corpus() -> None:
    shipped = json.loads(WEIGHTS.read_text(encoding="utf-8"))
    fresh = training.train_shipped()
    assert shipped["corpus_sha256"] == fresh["corpus_sha256"]
    assert shipped["labels"] == fresh["labels"]
    assert shipped["threshold"] == fresh["threshold"]
    assert shipped["features"].keys() == fresh["features"].keys()
    for gram, row in fresh["features"].items():
        assert shipped["features"][gram] == pytest.approx(row, abs=1e-9, rel=1e-7)
    assert shipped["intercept"] == pytest.approx(fresh["intercept"], abs=1e-9, rel=1e-7)
    # The file is exactly what the script writes (format and all).
    assert training.main(["--check"]) == 0


def test_low_confidence_is_other_and_clear_messages_are_classified() -> None:
    shipped = TextClassifier.shipped()
    assert shipped.classify("")[0] == "other"
    category, confidence = shipped.classify("退款申请提交三天了还没处理，钱什么时候退回来")
    assert category == "return_refund"
    assert 0.2 <= confidence <= 1
    assert shipped.classify("my package hasn't arrived, tracking stuck for a week")[0] == (
        "logistics"
    )


def test_classifying_loads_neither_numpy_nor_sklearn() -> None:
    code = (
        "import sys\n"
        "import crm.tickets\n"
        "from crm.tickets import classify\n"
        "print(classify('鞋子偏小一码'))\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'sklearn', 'scipy'))\n"
        "assert not bad, bad\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "size_fit" in out.stdout
