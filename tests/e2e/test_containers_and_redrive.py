"""Functions added to the template in a fragment: a slow route shows how many containers a
burst gets; a queue nobody consumes shows its dead letters going back."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator

import pytest

from crm_local.emulator import DEFAULT_CONCURRENCY
from tests.e2e.conftest import Running, start_emulator, template_with

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
