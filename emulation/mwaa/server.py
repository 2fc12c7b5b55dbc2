"""The emulator's HTTP server on 127.0.0.1: every request goes to MwaaEmulator."""

from __future__ import annotations

import contextlib
import logging
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from emulation.mwaa.responses import ApiError, error_response

if TYPE_CHECKING:
    from emulation.mwaa.control_api import MwaaEmulator

logger = logging.getLogger(__name__)


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], emulator: MwaaEmulator) -> None:
        super().__init__(address, RequestHandler)
        self.emulator = emulator


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The headers and the body go out as two writes: with Nagle's algorithm the body waits for the
    # client's delayed ACK of the headers (40 ms on Linux) on every keep-alive request.
    disable_nagle_algorithm = True
    timeout = 10  # seconds an idle keep-alive connection holds its thread
    server: EmulatorServer

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {key.lower(): value for key, value in self.headers.items()}
        try:
            response = self.server.emulator._handle(method, self.path, headers, body)
        except Exception as error:  # a bug in the emulator: answer 500 with its text, so the test shows it
            logger.exception("the MWAA emulator failed on %s %s", method, urlsplit(self.path).path)
            response = error_response(ApiError("InternalServerException", f"emulator error: {error!r}"))
        # A client that gave up waiting (a timeout) no longer reads the answer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.send_response(response.status)
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read `calls`, not access logs."""
