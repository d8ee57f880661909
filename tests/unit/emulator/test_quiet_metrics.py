"""The emulator's quiet mode keeps functions' metrics off the console, however many
invocations a warm container serves."""

from __future__ import annotations

import pytest
from aws_lambda_powertools.metrics import Metrics, MetricUnit

from crm_local.runtime import _drop_disabled_metrics


@pytest.fixture
def quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Crm")
    Metrics().clear_metrics()


def invocations(count: int, after_each: bool) -> None:
    metrics = Metrics()
    for _ in range(count):
        metrics.add_metric("MessagesProcessed", MetricUnit.Count, 1)
        metrics.flush_metrics(raise_on_empty_metrics=False)  # what log_metrics does at the end
        if after_each:
            _drop_disabled_metrics()


# The 100th value prints and clears the set, so that invocation's own flush finds it empty.
@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_powertools_alone_prints_after_a_hundred_quiet_invocations(
    quiet: None, capsys: pytest.CaptureFixture[str]
) -> None:
    invocations(100, after_each=False)
    assert '"MessagesProcessed"' in capsys.readouterr().out
    Metrics().clear_metrics()


def test_the_emulator_clears_them_after_each_invocation(
    quiet: None, capsys: pytest.CaptureFixture[str]
) -> None:
    invocations(250, after_each=True)
    assert capsys.readouterr().out == ""
