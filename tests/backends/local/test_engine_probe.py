"""`auto` asks the engine's /_ping with the standard library: a 200 means docker, anything else process."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.backends.local.dockerengine import engine_answers


def serve_once(path: Path, answer: bytes) -> threading.Thread:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def answer_one() -> None:
        connection, _ = server.accept()
        with connection, server:
            request = connection.recv(1024)
            assert request.startswith(b"GET /_ping ")
            connection.sendall(answer)

    thread = threading.Thread(target=answer_one, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def socket_path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "docker.sock"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK", True), (b"HTTP/1.1 500 Internal\r\n\r\n", False)],
)
def test_the_ping_decides(
    socket_path: Path, monkeypatch: pytest.MonkeyPatch, answer: bytes, expected: bool
) -> None:
    thread = serve_once(socket_path, answer)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{socket_path}")
    assert engine_answers() is expected
    thread.join(5)


def test_no_socket_means_no_engine(socket_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{socket_path}")
    assert engine_answers() is False


def test_a_silent_socket_times_out(socket_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(socket_path))
    server.listen(1)  # accepts the connection in the kernel but never answers
    monkeypatch.setenv("DOCKER_HOST", f"unix://{socket_path}")
    with server:
        assert engine_answers(timeout=0.2) is False
