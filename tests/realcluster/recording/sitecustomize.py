"""Loaded at the start of every Python process whose PYTHONPATH leads with this directory (the runner
commands the RBAC test runs, and the processes they start, a detached builder among them): with
RUNNER_TEST_API_LOG and RUNNER_TEST_API_PORT set, each request urllib3 sends to that port (the API
server's) is appended to that log as `METHOD /path?query`. The official client and its watches go through
urllib3's pools, whose urlopen sees each request (a retried one is seen again, which changes no verb)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _record(log: Path, port: int) -> None:
    from urllib3.connectionpool import HTTPConnectionPool

    original = HTTPConnectionPool.urlopen

    def urlopen(self: HTTPConnectionPool, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if self.port == port:
            with log.open("a", encoding="utf-8") as out:
                out.write(f"{method} {url}\n")
        return original(self, method, url, *args, **kwargs)

    HTTPConnectionPool.urlopen = urlopen  # type: ignore[method-assign]


if os.environ.get("RUNNER_TEST_API_LOG"):
    _record(Path(os.environ["RUNNER_TEST_API_LOG"]), int(os.environ["RUNNER_TEST_API_PORT"]))
