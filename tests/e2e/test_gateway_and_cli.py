"""The gateway as client apps meet it: bursts, error bodies and CORS as the template declares
them; and the CLI's commands on a running emulator."""

from __future__ import annotations

import http.client
import json
import threading
import urllib.error
import urllib.parse
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


def raw(
    emulator: Running, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """Any method, the answer's headers as sent, and its bytes."""
    url = urllib.parse.urlsplit(emulator.api)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_no_token_gets_the_templates_401_with_cors(emulator: Running) -> None:
    status, headers, body = raw(emulator, "GET", "/customers/anyone")
    assert status == 401
    error = json.loads(body)["error"]
    assert error["code"] == "unauthorized"
    assert error["message"]
    assert headers["Content-Type"] == "application/json"
    assert headers["Access-Control-Allow-Origin"] == "*"


def test_a_preflight_needs_no_token(emulator: Running) -> None:
    status, headers, _ = raw(
        emulator,
        "OPTIONS",
        "/customers/c-1",
        {
            "Origin": "https://shop.example.com",
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert status in (200, 204)
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert {"GET", "PATCH", "OPTIONS"} <= set(headers["Access-Control-Allow-Methods"].split(","))
    allowed = {h.lower() for h in headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed
    assert int(headers["Access-Control-Max-Age"]) > 0


def test_head_and_unknown_routes_are_api_gateways_403(emulator: Running) -> None:
    admin = {"Authorization": f"Bearer {emulator.token('admin')}"}
    status, headers, body = raw(emulator, "HEAD", "/customers/c-1", admin)
    assert (status, body) == (403, b"")  # HEAD: the headers of the answer, no body
    assert int(headers["Content-Length"]) > 0
    status, headers, body = raw(emulator, "GET", "/nowhere", admin)
    assert status == 403
    assert json.loads(body)["error"]["code"] == "unknown_route"
    assert headers["Access-Control-Allow-Origin"] == "*"
