"""The emulator's static host of the dashboard page: a fixed list of files, the config.json a
deploy would write, nothing else of the checkout."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from crm_local.cli import dashboard_port
from crm_local.dashboard import (
    DASHBOARD_DIR,
    ECHARTS,
    MISSING_LIBRARY,
    DashboardServer,
    answer,
    page_config,
)
from crm_local.dashboard import main as dashboard_main
from crm_local.template import load_template

API = "http://127.0.0.1:8000"
CONFIG = page_config(API)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name in ("index.html", "app.js", "style.css"):
        (tmp_path / name).write_text(f"<{name}>")
    return tmp_path


def test_the_page_and_its_files_with_their_types(folder: Path) -> None:
    for target, body, kind in [
        ("/", b"<index.html>", "text/html"),
        ("/index.html?x=1", b"<index.html>", "text/html"),
        ("/app.js", b"<app.js>", "text/javascript"),
        ("/style.css", b"<style.css>", "text/css"),
    ]:
        reply = answer("GET", target, CONFIG, folder)
        assert (reply.status, reply.body) == (200, body), target
        assert reply.headers["Content-Type"].startswith(kind)
        assert reply.headers["X-Content-Type-Options"] == "nosniff"


def test_config_tells_the_page_where_the_api_is_and_to_take_dev_tokens(folder: Path) -> None:
    reply = answer("GET", "/config.json", page_config(API, "EUR"), folder)
    assert json.loads(reply.body) == {"api": API, "auth": {"mode": "dev"}, "currency": "EUR"}
    # The page may call its own origin and the API, no other.
    assert f"connect-src 'self' {API};" in reply.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    "target",
    ["/../template.yaml", "/%2e%2e/template.yaml", "/.crm-local/dev-secret", "/package.json",
     "/node_modules/echarts/package.json", "/app.js/..", "/index.htm"],
)  # fmt: skip
def test_nothing_else_of_the_checkout_is_served(folder: Path, target: str) -> None:
    (folder / "package.json").write_text("{}")
    assert answer("GET", target, CONFIG, folder).status == 404


def test_only_reads(folder: Path) -> None:
    reply = answer("POST", "/", CONFIG, folder)
    assert (reply.status, reply.headers["Allow"]) == (405, "GET, HEAD")


def test_a_missing_chart_library_says_how_to_install_it(folder: Path) -> None:
    reply = answer("GET", "/vendor/echarts.min.js", CONFIG, folder)
    assert (reply.status, reply.body.decode().strip()) == (404, MISSING_LIBRARY)
    (folder / ECHARTS).parent.mkdir(parents=True)
    (folder / ECHARTS).write_text("/* echarts */")
    reply = answer("GET", "/vendor/echarts.min.js", CONFIG, folder)
    assert (reply.status, reply.body) == (200, b"/* echarts */")


def test_the_server_answers_over_http_on_a_free_port() -> None:
    server = DashboardServer(API, 0, DASHBOARD_DIR).start()
    try:
        with urllib.request.urlopen(server.url, timeout=10) as response:  # noqa: S310
            assert b'<script src="app.js"' in response.read()
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(server.url + "nothing", timeout=10)  # noqa: S310
        assert missing.value.code == 404
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("api_port", "chosen", "expected"), [(8000, None, 8001), (0, None, 0), (8000, 9000, 9000)]
)
def test_the_page_sits_next_to_the_api(api_port: int, chosen: int | None, expected: int) -> None:
    assert dashboard_port(api_port, chosen) == expected


OUTPUTS = [
    {"OutputKey": "ApiUrl", "OutputValue": "https://abc.execute-api.eu-west-1.amazonaws.com/v1"},
    {"OutputKey": "StaffSignInDomain",
     "OutputValue": "https://crm-staff-prod-1.auth.eu-west-1.amazoncognito.com"},
    {"OutputKey": "StaffUserPoolClientId", "OutputValue": "client123"},
    {"OutputKey": "DashboardUrl", "OutputValue": "https://dash.example.com/"},
    {"OutputKey": "UserPoolId", "OutputValue": "eu-west-1_x"},
]  # fmt: skip


def test_a_deployed_stack_s_config_signs_in_on_the_staff_pool(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(OUTPUTS)))
    assert dashboard_main(["--currency", "EUR"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "api": "https://abc.execute-api.eu-west-1.amazonaws.com/v1",
        "auth": {
            "mode": "cognito",
            "domain": "https://crm-staff-prod-1.auth.eu-west-1.amazoncognito.com",
            "client_id": "client123",
            "redirect_uri": "https://dash.example.com/",
        },
        "currency": "EUR",
    }


def test_a_stack_without_the_outputs_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(OUTPUTS[:1])))
    assert dashboard_main([]) == 2
    assert "no output DashboardUrl, StaffSignInDomain" in capsys.readouterr().err


def test_the_template_declares_what_the_config_reads() -> None:
    template = load_template()
    outputs = template.body["Outputs"]
    assert {"ApiUrl", "StaffSignInDomain", "StaffUserPoolClientId", "DashboardUrl"} <= set(outputs)
    client = template.body["Resources"]["StaffUserPoolClient"]["Properties"]
    # A static page keeps no secret: the code flow (with PKCE), back to the page only.
    assert (client["GenerateSecret"], client["AllowedOAuthFlows"]) == (False, ["code"])
    assert client["CallbackURLs"] == [{"Ref": "DashboardUrl"}]
