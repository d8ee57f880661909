"""Resources added to the template in a fragment: a slow route shows how many containers a
burst gets; a queue nobody consumes shows `crm-local redrive` sending its dead letters back."""

from __future__ import annotations

import json
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from crm_local.emulator import DEFAULT_CONCURRENCY
from crm_local.template import ROOT
from tests.e2e.conftest import CLI, Running, start_emulator, template_with

pytestmark = pytest.mark.e2e

SLOW_APP = """
import json, time, uuid

CONTAINER = uuid.uuid4().hex  # made once per import, and the emulator imports once per container

def handler(event, context):
    time.sleep(2)  # long enough for the whole burst to arrive while every container is busy
    return {"statusCode": 200, "body": json.dumps({"container": CONTAINER})}
"""

FRAGMENT = """
  SlowFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: slow
      Handler: app.handler
      Events:
        Http:
          Type: Api
          Properties: {RestApiId: !Ref CrmApi, Path: /slow, Method: GET}
  ParkedQueue:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt ParkedDLQ.Arn
        maxReceiveCount: 1
  ParkedDLQ:
    Type: AWS::SQS::Queue
"""


@pytest.fixture(scope="module")
def extended(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("containers")
    template = template_with(folder, FRAGMENT, {"slow": SLOW_APP})
    with start_emulator(template, folder / "state") as running:
        yield running


def test_a_burst_runs_in_more_containers_than_two_up_to_the_default(extended: Running) -> None:
    token = extended.token("analyst")
    count = DEFAULT_CONCURRENCY + 2
    start = threading.Barrier(count)
    containers: list[str] = []

    def client() -> None:
        request = urllib.request.Request(  # noqa: S310 - 127.0.0.1
            extended.api + "/slow", headers={"Authorization": f"Bearer {token}"}
        )
        start.wait()
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
            containers.append(json.loads(response.read())["container"])

    threads = [threading.Thread(target=client) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(containers) == count
    assert 2 < len(set(containers)) <= DEFAULT_CONCURRENCY


def bodies(sqs: Any, url: str) -> list[str]:
    """What a queue holds, left in it (visible again at once)."""
    out = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    return [m["Body"] for m in out.get("Messages", [])]


def test_redrive_sends_dead_letters_back_to_their_queue(extended: Running) -> None:
    sqs = extended.aws("sqs")
    url = sqs.get_queue_url(QueueName="crm-local-ParkedQueue")["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName="crm-local-ParkedDLQ")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    for _ in range(2):  # received past maxReceiveCount, as a failing consumer would
        sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)
    assert (bodies(sqs, url), bodies(sqs, dlq)) == ([], ["poison"])

    out = extended.cli("redrive", "ParkedQueue")

    assert out == "moved 1 message from crm-local-ParkedDLQ back to crm-local-ParkedQueue"
    assert (bodies(sqs, url), bodies(sqs, dlq)) == (["poison"], [])


@pytest.mark.parametrize(
    ("queue", "says"),
    [
        ("ParkedDLQ", "crm-local-ParkedDLQ has no dead-letter queue; queues that have one: "),
        ("NoSuchQueue", "no queue NoSuchQueue; the template's: "),
    ],
)
def test_redrive_of_a_queue_without_dead_letters_is_a_usage_error(
    extended: Running, queue: str, says: str
) -> None:
    done = subprocess.run(
        [*CLI, "--state-dir", str(extended.state_dir), "--template", str(extended.template),
         "redrive", queue],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith(f"crm-local redrive: error: {says}")
    assert "ParkedQueue" in done.stderr
    assert "Traceback" not in done.stderr
