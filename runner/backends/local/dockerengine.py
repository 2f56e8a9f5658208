"""The local Docker engine as the docker backend and `runner images` use it: a client, whether one answers,
which image a reference is now, and the job images runner built (listed, removed).

engine_answers asks with the standard library (`--backend auto` costs a millisecond, not the SDK's
import); the rest goes through the docker SDK, imported lazily, except where runner.images.engine's
socket queries can tell.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from runner.errors import BackendError

if TYPE_CHECKING:
    import docker


def engine(timeout: int = 60) -> docker.DockerClient:
    """A client of the local engine, or EngineError (a BackendError) saying how to get one."""
    from runner.images.engine import connect_engine

    return connect_engine(timeout)


def image_digest(reference: str) -> str | None:
    """Which image a reference is now: its registry digest (repository@sha256:...) once pushed, else its
    ID on the engine (sha256:...); None when the engine cannot say."""
    from runner.images.engine import quick_image

    attrs = quick_image(reference)  # over the engine's socket; the SDK where that cannot tell
    if attrs is None:
        import docker.errors

        try:
            attrs = engine().images.get(reference).attrs
        except docker.errors.DockerException:
            return None
    repository = reference.rsplit(":", 1)[0] if "/" not in reference.rsplit(":", 1)[-1] else reference
    pushed = [item for item in attrs.get("RepoDigests") or [] if item.startswith(f"{repository}@")]
    return str(pushed[0]) if pushed else str(attrs["Id"])


def job_images(job: str | None = None) -> list[dict[str, str]]:
    """The job images runner built on this engine (labelled managed-by runner, with a job): reference
    (or id when untagged), id, job and creation time; only job's when given."""
    from runner.images.build import TAG_LABEL
    from runner.spec.labels import JOB_LABEL, MANAGED_BY, MANAGER

    wanted = [f"{MANAGED_BY}={MANAGER}", TAG_LABEL] + ([f"{JOB_LABEL}={job}"] if job else [])
    found = []
    for image in engine().images.list(filters={"label": wanted}):
        labels = image.labels or {}
        tags = image.tags or [str(image.id)]
        for reference in tags:
            found.append(
                {
                    "reference": reference,
                    "id": str(image.id),
                    "job": labels.get(JOB_LABEL, ""),
                    "created": str(image.attrs.get("Created", "")),
                }
            )
    return found


def remove_image(reference: str) -> str | None:
    """Remove one tag (the image goes with its last tag); why not, when the engine refuses (in use)."""
    import docker.errors

    try:
        engine().images.remove(reference, noprune=False)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as error:
        return str(error.explanation or error)
    return None


def engine_answers(timeout: float = 1.0) -> bool:
    """Whether a Docker engine answers /_ping at DOCKER_HOST (default: the local socket).

    Asked with the standard library, so `auto` costs a millisecond rather than the SDK's import.
    """
    from runner.images.engine import engine_address

    parsed = urlparse(engine_address())
    try:
        if parsed.scheme == "unix":
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                connection.settimeout(timeout)
                connection.connect(parsed.path)
                connection.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                return connection.recv(64).split(b" ", 2)[1:2] == [b"200"]
        if parsed.scheme in ("tcp", "http") and parsed.hostname:
            with socket.create_connection((parsed.hostname, parsed.port or 2375), timeout) as connection:
                connection.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                return connection.recv(64).split(b" ", 2)[1:2] == [b"200"]
    except OSError:
        return False
    try:  # ssh://, TLS and other transports: ask the SDK
        engine(timeout=int(max(timeout, 1))).close()
    except BackendError:
        return False
    return True
