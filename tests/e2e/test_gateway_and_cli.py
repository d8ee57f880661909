"""The gateway as client apps meet it: bursts, error bodies and CORS as the template declares
them; and the CLI's commands on a running emulator."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

from tests.e2e.conftest import Running

pytestmark = pytest.mark.e2e


def post_customer(api: str, token: str, external_id: str) -> int | str:
    """The status of one POST /customers, or the error that kept it from getting one."""
    body = {"identities": [{"channel": "app", "external_id": external_id}]}
    request = urllib.request.Request(  # noqa: S310 - 127.0.0.1
        api + "/customers",
        method="POST",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code
    except OSError as err:  # a reset connection, a refused one, a timeout
        return repr(err)


def test_a_burst_of_20_concurrent_posts_is_answered_in_full(emulator: Running) -> None:
    admin = emulator.token("admin")
    count = 20
    start = threading.Barrier(count)
    results: list[int | str] = [0] * count

    def client(i: int) -> None:
        start.wait()  # all at once, as a burst does
        results[i] = post_customer(emulator.api, admin, f"burst-{i}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r for r in results if r not in (200, 201)] == []
