"""`runner ui` as users start it: the address it prints, loopback by default, a token beyond loopback."""

from __future__ import annotations

import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import run_runner, runner_command


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def started(*args: str) -> Iterator[str]:
    """`runner ui ARGS`, until the block ends; the first line it prints."""
    process = subprocess.Popen(runner_command("ui", *args), stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        yield process.stderr.readline()
    finally:
        process.terminate()
        process.wait(timeout=30)


def status(url: str) -> int:
    for _ in range(100):
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                code: int = response.status
                return code
        except urllib.error.HTTPError as error:
            return error.code
        except urllib.error.URLError:
            subprocess.run(["sleep", "0.1"], check=True)  # the server is still starting
    raise AssertionError(f"nothing answered at {url}")


def test_by_default_it_serves_this_machine_without_a_token(home: Path) -> None:
    port = free_port()
    with started("--port", str(port)) as said:
        assert said.strip() == f"runner ui: http://127.0.0.1:{port}/ (read-only; Ctrl-C stops it)"
        assert status(f"http://127.0.0.1:{port}/") == 200


def test_bound_beyond_loopback_it_prints_a_token_and_asks_for_it(home: Path) -> None:
    port = free_port()
    with started("--host", "0.0.0.0", "--port", str(port)) as said:
        token = said.split("?token=", 1)[1].split()[0]
        assert len(token) >= 16
        assert status(f"http://127.0.0.1:{port}/") == 401
        assert status(f"http://127.0.0.1:{port}/api/runs?token={token}") == 200


def test_a_short_token_is_refused_before_anything_listens(home: Path) -> None:
    refused = run_runner("ui", "--host", "0.0.0.0", "--token", "short")
    assert refused.code == 2
    assert "--token is too short" in refused.stderr and "Traceback" not in refused.stderr
