"""A package index on loopback for pip on this machine (PIP_INDEX_URL), to steer an image build: one that
knows no project (pip download fails at once, as for a misspelt requirement), or one that holds every
request until it is closed (a build that stays in its first download, for as long as a test needs)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class PackageIndex:
    url: str
    requests: list[str] = field(default_factory=list)  # the paths asked for, in order


@contextmanager
def package_index(*, holding: bool) -> Iterator[PackageIndex]:
    """An index that answers 404 to everything, after holding each request until it closes if holding."""
    released = threading.Event()
    index = PackageIndex(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            index.requests.append(self.path)
            if holding:
                released.wait()
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    index.url = f"http://127.0.0.1:{server.server_port}/simple/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield index
    finally:
        released.set()
        server.shutdown()
        server.server_close()
