"""The engine asked over its unix socket without the docker SDK: JSON answers, None where it cannot tell
(the caller then asks through the SDK, which says why), and /info asked ahead in a thread."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import docker
import pytest

from runner.images.engine import EngineError, InfoAhead, engine_info, quick_get, quick_image


def serve(path: Path, answers: list[bytes]) -> tuple[threading.Thread, list[bytes]]:
    """A unix socket at path answering one request per answer, in order; the requests it read."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(len(answers))
    requests: list[bytes] = []

    def answer_each() -> None:
        with server:
            for answer in answers:
                connection, _ = server.accept()
                with connection:
                    requests.append(connection.recv(4096))
                    connection.sendall(answer)

    thread = threading.Thread(target=answer_each, daemon=True)
    thread.start()
    return thread, requests


def http(status: str, body: bytes) -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


@pytest.fixture
def engine_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "docker.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    return path


def test_a_200_with_json_is_the_answer_and_anything_else_none(engine_socket: Path) -> None:
    thread, requests = serve(
        engine_socket,
        [
            http("200 OK", b'{"Id": "sha256:abc", "RepoDigests": []}'),
            http("404 Not Found", b'{"message": "No such image: x:1"}'),
            http("200 OK", b"not json"),
        ],
    )
    assert quick_image("registry.local:5000/team/job:1a2b") == {"Id": "sha256:abc", "RepoDigests": []}
    assert quick_image("x:1") is None
    assert quick_get("/info") is None
    thread.join(5)
    assert requests[0].startswith(b"GET /images/registry.local:5000/team/job:1a2b/json HTTP/1.1\r\n")


def test_no_socket_or_no_unix_socket_cannot_tell(
    engine_socket: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert quick_get("/info") is None  # nothing listens there
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    assert quick_get("/info") is None


def test_a_silent_engine_times_out(engine_socket: Path) -> None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(engine_socket))
    server.listen(1)  # accepts the connection in the kernel but never answers
    with server:
        assert quick_get("/info", timeout=0.2) is None


def test_info_asked_ahead_is_what_check_reads(engine_socket: Path) -> None:
    thread, requests = serve(engine_socket, [http("200 OK", b'{"NCPU": 2, "Runtimes": {"runc": {}}}')])
    ahead = InfoAhead(timeout=5)
    assert ahead.result() == {"NCPU": 2, "Runtimes": {"runc": {}}}
    thread.join(5)
    assert len(requests) == 1 and requests[0].startswith(b"GET /info ")


def test_without_an_engine_info_says_how_to_get_one(engine_socket: Path) -> None:
    with pytest.raises(EngineError) as raised:
        InfoAhead(timeout=2).result()  # the early question found nothing: asked again, through the SDK
    assert "no Docker engine answers" in str(raised.value)
    assert "scripts/engine.sh start" in (raised.value.hint or "")


def test_the_socket_and_the_sdk_say_the_same_of_the_real_engine(docker_client: docker.DockerClient) -> None:
    info = engine_info(10)
    expected = docker_client.info()
    assert (info["ID"], info["NCPU"], info["MemTotal"]) == (
        expected["ID"],
        expected["NCPU"],
        expected["MemTotal"],
    )
    assert set(info["Runtimes"]) == set(expected["Runtimes"])
