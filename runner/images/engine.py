"""The local Docker engine as building and pushing use it: one cached client, lookups, errors in words.

``connect_engine`` gives a client of the engine DOCKER_HOST names (docker SDK, imported lazily);
``quick_get`` and what uses it (``quick_image``, ``engine_info``, ``InfoAhead``) ask a unix-socket
engine directly, without the SDK, where a command's start-up would otherwise be mostly the SDK's;
``BuildError`` and ``EngineError`` are what building and pushing raise, and the helpers at the end
turn what the engine said (API errors, error events, connection failures) into short messages.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from runner.errors import BackendError, RunnerError

if TYPE_CHECKING:
    import docker

Progress = Callable[[str], None]  # what building and pushing pass each line of the engine's output to

ENGINE_HINT = "start one with scripts/engine.sh start (or point DOCKER_HOST at one)"
DEFAULT_ENGINE = "unix:///var/run/docker.sock"
CLIENT_TIMEOUT_S = 120  # per request; a build's output stream has no read timeout (silent steps are fine)


class BuildError(RunnerError):
    """An image could not be built or pushed; ``step`` is the failing step, ``output`` its last lines."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        step: str | None = None,
        output: Sequence[str] = (),
    ) -> None:
        super().__init__(message, hint=hint)
        self.step = step
        self.output = tuple(output)


class EngineError(BackendError):
    """No Docker engine answers, or it stopped answering."""


def engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_ENGINE


_clients: dict[tuple[str, int], docker.DockerClient] = {}
_clients_lock = threading.Lock()


def connect_engine(timeout: int = CLIENT_TIMEOUT_S) -> docker.DockerClient:
    """A client of the engine DOCKER_HOST (or the default socket) names; EngineError when none answers.

    One client per engine and timeout for the life of the process: making one asks the engine for its
    version and pings it (~10 ms each time), which dominated submitting many runs from one process (the
    scheduler, a service). A cached client whose engine went away fails its next call with the usual
    connection error, which callers already report.
    """
    try:
        import docker
    except ImportError:
        raise EngineError(
            "the docker SDK for Python is not installed", hint="pip install 'docker>=7.1' next to the runner"
        ) from None

    key = (engine_address(), timeout)
    with _clients_lock:
        cached = _clients.get(key)
        if cached is not None:
            return cached
        try:
            client = docker.from_env(timeout=timeout)
            client.ping()
        except docker.errors.DockerException as error:
            raise EngineError(
                f"no Docker engine answers at {engine_address()}: {short(str(error))}", hint=ENGINE_HINT
            ) from None
        _clients[key] = client
        return client


def local_image(client: docker.DockerClient, reference: str) -> str | None:
    """The id of the image the engine has under reference, or None when it has none."""
    import docker

    try:
        image = client.images.get(reference)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as error:
        raise EngineError(f"the Docker engine cannot look up {reference}: {api_message(error)}") from None
    return str(image.id)


def quick_get(path: str, timeout: float = 5.0) -> Any:
    """The engine's JSON answer to GET path, asked without the docker SDK; None when it cannot tell.

    One request over the engine's unix socket with http.client: a few milliseconds, where importing
    the SDK and making a client (which asks for the version and pings) take a few hundred; the check of
    an unchanged job's image and the start of a submit were mostly that. None also for anything but a
    200 answer with JSON (not a unix socket, no answer, an error): the caller then asks through the SDK,
    which says why.
    """
    import http.client
    import json
    import socket

    address = engine_address()
    if not address.startswith("unix://"):
        return None
    socket_path = address.removeprefix("unix://")

    class _UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(socket_path)

    connection = _UnixConnection("localhost", timeout=timeout)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        body = answer.read()
        return json.loads(body) if answer.status == 200 else None
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def quick_image(reference: str, timeout: float = 5.0) -> dict[str, Any] | None:
    """What the engine says of the image under reference (its inspect), or None (quick_get)."""
    from urllib.parse import quote

    found = quick_get(f"/images/{quote(reference, safe='/:@')}/json", timeout)
    return found if isinstance(found, dict) else None


def quick_image_id(reference: str, timeout: float = 5.0) -> str | None:
    """The id of the image the engine has under reference, or None (quick_get)."""
    found = (quick_image(reference, timeout) or {}).get("Id")
    return str(found) if found else None


def engine_info(timeout: int = CLIENT_TIMEOUT_S) -> dict[str, Any]:
    """The engine's /info (runtimes, CPUs, memory): over its socket, else through the SDK, which raises
    EngineError saying how to get an engine when none answers."""
    found = quick_get("/info", timeout)
    if isinstance(found, dict):
        return found
    return dict(connect_engine(timeout).info())


class InfoAhead:
    """The engine's /info, asked in a thread from now on: a submit asks while it reads its manifest.
    result() gives it (or asks again, through engine_info, when the early question found nothing)."""

    def __init__(self, timeout: int = 60) -> None:
        self._timeout = timeout
        self._found: Any = None
        self._thread = threading.Thread(target=self._ask, name="engine-info", daemon=True)
        self._thread.start()

    def _ask(self) -> None:
        self._found = quick_get("/info", self._timeout)

    def result(self) -> dict[str, Any]:
        self._thread.join(self._timeout)
        if isinstance(self._found, dict):
            return self._found
        return engine_info(self._timeout)


def connection_errors() -> tuple[type[Exception], ...]:
    """What a call to the engine raises when its connection breaks or times out."""
    import requests

    return (requests.exceptions.ConnectionError, requests.exceptions.Timeout)


def engine_errors() -> tuple[type[Exception], ...]:
    """Whatever a call to the engine may raise: its refusals and lost connections."""
    import docker

    return (docker.errors.DockerException, *connection_errors())


def stopped_answering(doing: str, error: BaseException) -> EngineError:
    """The engine's connection broke off while building or pushing ("building IMAGE")."""
    return EngineError(
        f"the Docker engine at {engine_address()} stopped answering while {doing}: {short(str(error))}",
        hint=ENGINE_HINT,
    )


# --- messages -----------------------------------------------------------------------------------


def event_error(event: Mapping[str, Any]) -> str:
    """The message of an error event in a build's or push's output stream."""
    detail = event.get("errorDetail")
    if isinstance(detail, dict) and detail.get("message"):
        return str(detail["message"])
    return str(event.get("error") or "unknown error")


def is_error_event(event: Mapping[str, Any]) -> bool:
    return "error" in event or "errorDetail" in event


def api_message(error: Exception) -> str:
    explanation = getattr(error, "explanation", None)
    return short(str(explanation or error))


def short(text: str, limit: int = 600) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
