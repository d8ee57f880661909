"""API Gateway's part on 127.0.0.1: each `Api` event of the template becomes a route that
invokes its function with a REST proxy event, behind a Cognito-like authorizer; CORS
preflights and error answers are the template's (`crm_local.api_settings`)."""

from __future__ import annotations

import base64
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from crm_local.api_settings import ApiSettings, GatewayReply
from crm_local.apigw import ApiRoute, find_resource, match_route, methods_of, proxy_event
from crm_local.local_server import LocalServer
from crm_local.tokens import InvalidToken, verify_token

log = logging.getLogger("crm_local.gateway")

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
Invoker = Callable[[str, dict[str, Any]], Any]


class ApiGateway:
    """What API Gateway does with one request: find the route, play the authorizer, answer
    CORS preflights, invoke the function (proxy integration), and give the template's gateway
    responses for everything that never reaches a function."""

    def __init__(
        self, routes: list[ApiRoute], invoke: Invoker, secret: str, settings: ApiSettings
    ) -> None:
        self.routes, self.invoke, self.secret, self.settings = routes, invoke, secret, settings

    def too_large(self, headers: Mapping[str, str]) -> GatewayReply:
        return self.settings.reply("REQUEST_TOO_LARGE", headers, request_id=_request_id())

    def answer(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes | None
    ) -> GatewayReply:
        request_id = _request_id()
        url = urlsplit(target)
        found = find_resource(self.routes, url.path)
        matched = match_route(self.routes, method, url.path) if found else None
        # SAM adds its preflight to every path of the API unless the path declares OPTIONS
        # itself; an ANY method does not keep it away.
        explicit = matched is not None and matched[0].method == "OPTIONS"
        if found and method.upper() == "OPTIONS" and self.settings.cors and not explicit:
            return self._preflight(found[0], headers, request_id)
        if matched is None:
            # What API Gateway answers for a path or a method it does not declare, HEAD on
            # a GET route included: REST APIs answer only the methods declared.
            return self.settings.reply(
                "MISSING_AUTHENTICATION_TOKEN", headers, request_id=request_id
            )
        route, params = matched
        claims = None
        if route.authorized:
            try:
                claims = verify_token(self.secret, _header(headers, "Authorization"))
            except InvalidToken:
                return self.settings.reply("UNAUTHORIZED", headers, request_id=request_id)
        event = proxy_event(
            route,
            url.path,
            params,
            method=method,
            headers=dict(headers),
            # API Gateway passes `?limit=` on as an empty value, which the API refuses.
            query=dict(parse_qsl(url.query, keep_blank_values=True)),
            body=body,
            claims=claims,
        )
        try:
            result = self.invoke(route.function, event)
        except Exception:
            log.exception("function %s failed", route.function)
            return self._function_failed(headers, request_id)
        if not isinstance(result, dict) or "statusCode" not in result:
            log.error("function %s answered no proxy response: %.200r", route.function, result)
            return self._function_failed(headers, request_id)
        payload = result.get("body") or ""
        data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
        out_headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
        return GatewayReply(int(result["statusCode"]), out_headers, data)

    def _preflight(
        self, resource: str, headers: Mapping[str, str], request_id: str
    ) -> GatewayReply:
        """SAM's OPTIONS method: a mock integration, no function, no token unless the template
        puts the default authorizer on preflights too."""
        assert self.settings.cors is not None
        if self.settings.preflight_needs_token:
            try:
                verify_token(self.secret, _header(headers, "Authorization"))
            except InvalidToken:
                return self.settings.reply("UNAUTHORIZED", headers, request_id=request_id)
        methods = methods_of(self.routes, resource)
        return GatewayReply(200, self.settings.cors.preflight(methods, headers), b"{}")

    def _function_failed(self, headers: Mapping[str, str], request_id: str) -> GatewayReply:
        # API Gateway answers 502 for a function error or a malformed proxy response; it has
        # no response type of its own, so DEFAULT_5XX shapes it.
        return self.settings.reply("DEFAULT_5XX", headers, status=502, request_id=request_id)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def _target(path: str) -> str:
    """The request target as the client sent it. The HTTP server reads the request line as
    Latin-1; a client that sends UTF-8 unescaped (curl does: `?category=母婴`) means UTF-8, as
    API Gateway reads it. Bytes that are not UTF-8 stay as they were read."""
    try:
        return path.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return path


def _request_id() -> str:
    return str(uuid.uuid4())


class Gateway:
    def __init__(
        self,
        routes: list[ApiRoute],
        invoke: Invoker,
        secret: str,
        port: int,
        settings: ApiSettings,
    ) -> None:
        # No default settings: a gateway without the template's error bodies and CORS would
        # answer differently from the one the template deploys.
        self.api = ApiGateway(routes, invoke, secret, settings)
        self.server = LocalServer(("127.0.0.1", port), self._handler_class())
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
        api = self.api

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                log.debug(format, *args)

            def _send(self, reply: GatewayReply) -> None:
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD":  # HTTP: the headers of a GET, without its body
                    self.wfile.write(reply.body)

            def _serve(self) -> None:
                headers = dict(self.headers.items())
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    # The body is left unread: it must not be taken for the next request.
                    self.close_connection = True
                    self._send(api.too_large(headers))
                    return
                body = self.rfile.read(length) if length else None
                self._send(api.answer(self.command, _target(self.path), headers, body))

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

            def __getattr__(self, name: str) -> Any:
                # Any other method (TRACE, QUERY, ...) gets API Gateway's answer for a method
                # no route declares, not the HTTP server's own 501 page.
                if name.startswith("do_"):
                    return self._serve
                raise AttributeError(name)

        return Handler
