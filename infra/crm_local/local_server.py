"""The HTTP server under the emulator's gateway and dashboard: threaded, on 127.0.0.1 only (the
callers bind it), and quiet about clients that hang up."""

from __future__ import annotations

import logging
import sys
from http.server import ThreadingHTTPServer
from typing import Any

log = logging.getLogger("crm_local.server")


class LocalServer(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: a burst of clients (a page of a client app, the
    # demo loader, a promotion) overflows it and the kernel resets what it cannot queue, where
    # API Gateway would answer every one.
    request_queue_size = 128
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up before its answer (a page reloaded, a loader stopped) is
        # ordinary traffic, not a traceback on the developer's console.
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("client %s went away before its answer", client_address)
            return
        super().handle_error(request, client_address)
