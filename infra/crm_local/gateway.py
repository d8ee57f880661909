"""API Gateway's part on 127.0.0.1: each `Api` event of the template becomes a route that
invokes its function with a REST proxy event, behind a Cognito-like authorizer."""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from crm_local.apigw import ApiRoute, match_route, proxy_event
from crm_local.tokens import InvalidToken, verify_token

log = logging.getLogger("crm_local.gateway")

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
Invoker = Callable[[str, dict[str, Any]], Any]


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: a burst of clients (a page of a client app, the
    # demo loader, a promotion) overflows it and the kernel resets what it cannot queue, where
    # API Gateway would answer every one.
    request_queue_size = 128
    daemon_threads = True


class Gateway:
    def __init__(
        self, routes: list[ApiRoute], invoke: Invoker, secret: str, port: int = 8000
    ) -> None:
        self.routes = routes
        self.invoke = invoke
        self.secret = secret
        self.server = _Server(("127.0.0.1", port), self._handler_class())
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="gateway", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                log.debug(format, *args)

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _error(self, status: int, message: str) -> None:
                body = json.dumps({"message": message}).encode()
                self._send(status, body, {"Content-Type": "application/json"})

            def _serve(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    self._error(413, "Request Too Long")
                    return
                body = self.rfile.read(length) if length else None
                found = match_route(gateway.routes, self.command, url.path)
                if found is None:
                    self._error(403, "Missing Authentication Token")
                    return
                route, params = found
                claims = None
                if route.authorized:
                    try:
                        claims = verify_token(gateway.secret, self.headers.get("Authorization"))
                    except InvalidToken:
                        self._error(401, "Unauthorized")
                        return
                event = proxy_event(
                    route,
                    url.path,
                    params,
                    method=self.command,
                    headers=dict(self.headers.items()),
                    query=dict(parse_qsl(url.query)),
                    body=body,
                    claims=claims,
                )
                try:
                    result = gateway.invoke(route.function, event)
                except Exception:
                    log.exception("function %s failed", route.function)
                    self._error(502, "Internal server error")
                    return
                payload = result.get("body") or ""
                data = (
                    base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
                )
                headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
                self._send(int(result.get("statusCode", 200)), data, headers)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        return Handler
