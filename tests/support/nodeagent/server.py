"""The kubelet's HTTPS endpoint, as far as the API server uses it for `kubectl logs` and pods/log:
`GET /containerLogs/{namespace}/{pod}/{container}` with follow, tailLines, sinceSeconds, sinceTime,
timestamps, limitBytes (and previous, which finds nothing: containers are never restarted here), plus
/healthz.

TLS with the agent's serving certificate; a client must present a certificate signed by the cluster's CA
(the API server's apiserver-kubelet-client). The handshake is done in the connection's own thread, so that
a slow client never holds up the others.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.support.nodeagent.logs import ContainerLog, LogOptions, since_seconds


class LogLookupError(Exception):
    """Why a container's log cannot be served: an HTTP status and kubelet's words."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


LogLookup = Callable[[str, str, str], ContainerLog]
"""(namespace, pod, container) -> its log, or LogLookupError."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no line per request on stderr

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        parts = [unquote(part) for part in url.path.split("/") if part]
        if parts == ["healthz"]:
            self._plain(200, "ok")
            return
        if len(parts) != 4 or parts[0] != "containerLogs":
            self._plain(404, f"404 page not found: {url.path}")
            return
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        try:
            options = _options(query)
            if query.get("previous") in ("true", "1"):
                raise LogLookupError(
                    400, f'previous terminated container "{parts[3]}" in pod "{parts[2]}" not found'
                )
            log = self.server.lookup(parts[1], parts[2], parts[3])
        except LogLookupError as error:
            self._plain(error.status, str(error))
            return
        except ValueError as error:
            self._plain(400, str(error))
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Connection", "close")
        self.end_headers()
        with contextlib.suppress(OSError):
            for chunk in log.read(options, stopping=self.server.stopping):
                self.wfile.write(chunk)
                self.wfile.flush()

    def _plain(self, status: int, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _options(query: dict[str, str]) -> LogOptions:
    since: datetime | None = None
    if "sinceSeconds" in query:
        since = since_seconds(int(query["sinceSeconds"]))
    elif "sinceTime" in query:
        since = datetime.fromisoformat(query["sinceTime"].replace("Z", "+00:00"))
    tail = int(query["tailLines"]) if "tailLines" in query else None
    limit = int(query["limitBytes"]) if "limitBytes" in query else None
    return LogOptions(
        follow=query.get("follow") in ("true", "1"),
        tail_lines=tail if tail is None or tail >= 0 else None,
        since=since,
        timestamps=query.get("timestamps") in ("true", "1"),
        limit_bytes=limit,
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], lookup: LogLookup, context: ssl.SSLContext) -> None:
        super().__init__(address, _Handler)
        self.lookup = lookup
        self.stopping = threading.Event()
        self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            request.settimeout(30)
            request.do_handshake()
            request.settimeout(None)
        except (OSError, ssl.SSLError):
            return
        super().finish_request(request, client_address)


class KubeletServer:
    """The endpoint on 127.0.0.1 (port 0: a free one); start() returns self, stop() ends every stream."""

    def __init__(self, cert: Path, key: Path, ca: Path, lookup: LogLookup, *, port: int = 0) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(str(ca))
        self._server = _Server(("127.0.0.1", port), lookup, context)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="kubelet-server",
            daemon=True,
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> KubeletServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)
