"""Every queue-fed function has a first message to measure its cold start with (bench/
first_request.py delivers the sample of events/ where the run produced none): the samples
are well-formed messages of their queue, settled without a failure (ids of nothing stored)."""

from __future__ import annotations

import pytest

from bench.first_request import sample_event
from crm_local.harness import Suite
from crm_local.template import load_template

SAMPLED = {
    "CampaignDispatchFunction": "CampaignDispatchQueue",
    "SendWorkerFunction": "SendTimersQueue",
    "PrivacyWorkerFunction": "PrivacyQueue",
    "JourneyDailyShardFunction": "JourneyDailyQueue",
    "TimerShardFunction": "TimerSweepQueue",
    "JourneyStepsFunction": "JourneyStepsQueue",
    "TicketSlaFunction": "TicketSlaQueue",
}


@pytest.mark.parametrize(("function", "queue"), sorted(SAMPLED.items()))
def test_the_sample_of_the_queue_is_settled_by_its_function(
    suite: Suite, function: str, queue: str
) -> None:
    spec = load_template().function(function)
    fed_by = {str(e.properties["Queue"]["Fn::GetAtt"][0]) for e in spec.events if e.type == "SQS"}
    assert queue in fed_by
    found = sample_event(queue)
    assert found is not None, f"no sample in events/ for {queue}"
    _, event = found
    record = event["Records"][0]
    record["eventSourceARN"] = suite.stack.attrs[queue]["Arn"]
    assert suite.invoke(function, event) == {"batchItemFailures": []}


def test_a_queue_without_a_sample_has_none() -> None:
    assert sample_event("NoSuchQueue") is None
