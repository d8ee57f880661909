"""The dashboard page on 127.0.0.1, served as a static host (S3 behind CloudFront) serves it in
AWS: its own origin, apart from the API's, so the page calls the API across origins with the
template's CORS exactly as it will deployed. Besides the page's files it serves the config.json
a deploy writes: where the API is and how to sign in (dev tokens here, Cognito in AWS)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from crm_local.local_server import LocalServer
from crm_local.template import ROOT

log = logging.getLogger("crm_local.dashboard")

DASHBOARD_DIR = ROOT / "dashboard"
ECHARTS = Path("node_modules/echarts/dist/echarts.min.js")
# Only these paths are served, each from a fixed file: no path from a request ever becomes a
# file name, so nothing else of the checkout (the state folder's secret) can be read through it.
FILES: dict[str, tuple[Path, str]] = {
    "/": (Path("index.html"), "text/html; charset=utf-8"),
    "/index.html": (Path("index.html"), "text/html; charset=utf-8"),
    "/app.js": (Path("app.js"), "text/javascript; charset=utf-8"),
    "/style.css": (Path("style.css"), "text/css; charset=utf-8"),
    # The chart library comes from npm (`make install` runs `npm ci` in dashboard/).
    "/vendor/echarts.min.js": (ECHARTS, "text/javascript; charset=utf-8"),
}
MISSING_LIBRARY = "echarts is not installed: run `make install` (npm ci in dashboard/)"


def page_config(
    api: str, currency: str = "CNY", auth: dict[str, str] | None = None
) -> dict[str, Any]:
    """The page's config.json: a local run's takes the dev tokens `crm-local token` prints."""
    return {"api": api, "auth": auth or {"mode": "dev"}, "currency": currency}


def deployed_config(outputs: list[dict[str, str]], currency: str = "CNY") -> dict[str, Any]:
    """The config.json of a deployed stack, from its outputs (`aws cloudformation
    describe-stacks --query 'Stacks[0].Outputs'`): the API and the staff pool's hosted sign-in,
    returning to the page's own address."""
    values = {o["OutputKey"]: o["OutputValue"] for o in outputs}
    missing = {"ApiUrl", "StaffSignInDomain", "StaffUserPoolClientId", "DashboardUrl"} - set(values)
    if missing:
        raise ValueError(f"the stack has no output {', '.join(sorted(missing))}: deploy it first")
    auth = {
        "mode": "cognito",
        "domain": values["StaffSignInDomain"],
        "client_id": values["StaffUserPoolClientId"],
        "redirect_uri": values["DashboardUrl"],
    }
    return page_config(values["ApiUrl"], currency, auth)


def security_headers(config: dict[str, Any]) -> dict[str, str]:
    # The page talks to its own origin, the API and the sign-in's token endpoint only; echarts
    # sets inline styles. A host in AWS sends the same policy (docs/dashboard.md).
    sources = " ".join(filter(None, [config["api"], config["auth"].get("domain")]))
    policy = (
        f"default-src 'self'; connect-src 'self' {sources}; img-src 'self' data:; "
        "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def answer(method: str, target: str, config: dict[str, Any], folder: Path) -> Reply:
    """What the static host answers to one request (a pure function, for the tests)."""
    headers = security_headers(config)
    if method not in ("GET", "HEAD"):
        return Reply(405, {**headers, "Allow": "GET, HEAD"}, b"")
    path = urlsplit(target).path
    if path == "/config.json":
        body = json.dumps(config).encode()
        return Reply(200, {**headers, "Content-Type": "application/json"}, body)
    found = FILES.get(path)
    if found is None:
        return Reply(404, {**headers, "Content-Type": "text/plain"}, b"not found\n")
    relative, content_type = found
    try:
        body = (folder / relative).read_bytes()
    except FileNotFoundError:
        missing = MISSING_LIBRARY if relative == ECHARTS else f"{relative} is missing"
        log.error("dashboard: %s", missing)
        return Reply(404, {**headers, "Content-Type": "text/plain"}, missing.encode() + b"\n")
    return Reply(200, {**headers, "Content-Type": content_type}, body)


class DashboardServer:
    def __init__(
        self,
        api: str,
        port: int = 0,
        folder: Path = DASHBOARD_DIR,
        currency: str = "CNY",
        auth: dict[str, str] | None = None,
    ) -> None:
        self.config = page_config(api, currency, auth)
        self.folder = folder
        self.server = LocalServer(("127.0.0.1", port), self._handler_class())
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/"

    @property
    def library_installed(self) -> bool:
        return (self.folder / ECHARTS).is_file()

    def start(self) -> DashboardServer:
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="dashboard", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        config, folder = self.config, self.folder

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                log.debug(format, *args)

            def _serve(self) -> None:
                reply = answer(self.command, self.path, config, folder)
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply.body)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve

        return Handler


def main(argv: list[str] | None = None) -> int:
    """`aws cloudformation describe-stacks ... | python -m crm_local.dashboard > config.json`"""
    parser = argparse.ArgumentParser(
        prog="python -m crm_local.dashboard",
        description="the dashboard's config.json from a deployed stack's outputs (JSON on stdin)",
    )
    parser.add_argument("--currency", default="CNY", help="ISO 4217 code (default CNY)")
    args = parser.parse_args(argv)
    try:
        config = deployed_config(json.load(sys.stdin), args.currency)
    except (ValueError, KeyError, TypeError) as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(config, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
