"""Build and push job images on the local Docker engine (docker SDK, imported lazily).

``ensure_image`` turns a manifest and its context into ``runner/<job>:<content-hash>``: when that
image is already on the engine it returns at once and builds nothing; otherwise it streams the build
context (``BuildRecipe.entries`` plus the runner's wheel) to the engine as a tar, passes every line
of the build's output to ``progress``, and on failure raises ``BuildError`` naming the failing step
with the end of its output, after removing what the failed build left (its containers go with
``forcerm``, its untagged images here). ``push_image`` sends a built image to its registry and
returns the digest the registry gave it.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tarfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from runner.config import load_settings
from runner.errors import BackendError, RunnerError
from runner.images.hashing import image_reference, image_tag
from runner.images.recipe import BuildEntry, BuildRecipe, build_recipe
from runner.images.wheel import runner_version, runner_wheel
from runner.spec.labels import JOB_LABEL, MANAGED_BY, MANAGER
from runner.spec.model import JobManifest

if TYPE_CHECKING:
    import docker

Progress = Callable[[str], None]

TAG_LABEL = "runner.dev/image-tag"
TAIL_LINES = 15  # lines of the failing step's output in a BuildError
ENGINE_HINT = "start one with scripts/engine.sh start (or point DOCKER_HOST at one)"
DEFAULT_ENGINE = "unix:///var/run/docker.sock"
CLIENT_TIMEOUT_S = 120  # per request; a build's output stream has no read timeout (silent steps are fine)
_CHUNK = 1 << 20
_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_STEP = re.compile(r"Step \d+/\d+ : ")
_PUSHED_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")
_IMAGE_ID = re.compile(r"[0-9a-f]{12,64}")
_NONZERO = re.compile(r"The command '.*' returned a non-zero code: (\d+)\Z", re.DOTALL)
_CHATTER = ("Removing intermediate container ", "Successfully built ", "Successfully tagged ")
_STEP_SHOWN = 240  # characters of a step's instruction shown in a message


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


@dataclass(frozen=True)
class BuiltImage:
    reference: str  # repository:tag, e.g. 127.0.0.1:5000/runner/mnist:0123456789abcdef0123
    tag: str  # the content hash
    built: bool  # False when the image was already there and nothing was built
    seconds: float
    image_id: str = ""  # sha256:... of the image on the engine

    @property
    def repository(self) -> str:
        return self.reference.rsplit(":", 1)[0]


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
                f"no Docker engine answers at {engine_address()}: {_short(str(error))}", hint=ENGINE_HINT
            ) from None
        _clients[key] = client
        return client


def image_name(job: str, registry: str | None) -> str:
    """``runner/<job>``, or ``<registry>/runner/<job>`` when the image goes to a registry."""
    return image_reference(registry or "", job, "latest").rsplit(":", 1)[0]


def has_registry(reference: str) -> bool:
    """Whether the reference's first component names a registry (a host with '.' or ':', or localhost)."""
    first, slash, _ = reference.partition("/")
    return bool(slash) and ("." in first or ":" in first or first == "localhost")


def planned_reference(
    manifest: JobManifest, context_dir: Path, *, registry: str | None, skip: Sequence[Path] = ()
) -> tuple[BuildRecipe, str, str]:
    """The recipe, tag and full reference of the job's image (built or not); only reads the context."""
    version = runner_version()
    recipe = build_recipe(manifest, context_dir, runner_version=version, skip=skip)
    tag = image_tag(recipe, context_dir, version)
    return recipe, tag, f"{image_name(recipe.job, registry)}:{tag}"


def ensure_image(
    manifest: JobManifest,
    context_dir: Path,
    *,
    registry: str | None,
    progress: Progress,
    skip: Sequence[Path] = (),
    client: docker.DockerClient | None = None,
    cache_dir: Path | None = None,
) -> BuiltImage:
    """The job's image on the local engine, built only when no image with its content hash is there.

    context_dir is spec.image.context resolved against the manifest's directory; skip lists
    directories left out of it (the runner's home when it lies inside). cache_dir holds the runner's
    wheels (default RUNNER_HOME/cache/wheels).
    """
    started = time.monotonic()
    recipe, tag, reference = planned_reference(manifest, context_dir, registry=registry, skip=skip)
    client = connect_engine() if client is None else client
    existing = _local_image(client, reference)
    if existing is not None:
        return BuiltImage(reference, tag, False, time.monotonic() - started, existing)
    wheel = runner_wheel(cache_dir or load_settings().home / "cache" / "wheels")
    image_id = _build(
        client, recipe, context_dir=context_dir, wheel=wheel, reference=reference, tag=tag, progress=progress
    )
    return BuiltImage(reference, tag, True, time.monotonic() - started, image_id)


def push_image(image: BuiltImage, *, progress: Progress, client: docker.DockerClient | None = None) -> str:
    """Push the image to the registry its reference names; the registry's digest, ``sha256:...``."""
    import docker

    repository, _, tag = image.reference.rpartition(":")
    registry = repository.split("/", 1)[0]
    if not has_registry(repository):
        raise BuildError(
            f"cannot push {image.reference}: its name has no registry",
            hint="build it with a registry (e.g. 127.0.0.1:5000) so that its name starts with the registry",
        )
    client = connect_engine() if client is None else client
    present = _already_pushed(client, image, repository, tag)
    if present is not None:
        progress(f"{image.reference} is already in {registry} ({present[:19]}...): nothing to push")
        return present
    digest: str | None = None
    last: dict[str, str] = {}
    try:
        for event in client.api.push(repository, tag=tag, stream=True, decode=True):
            if not isinstance(event, dict):
                continue
            if "error" in event or "errorDetail" in event:
                raise BuildError(
                    f"pushing {image.reference} to {registry} failed: {_event_error(event)}",
                    hint=_push_hint(registry, _event_error(event)),
                )
            aux = event.get("aux")
            if isinstance(aux, dict) and isinstance(aux.get("Digest"), str):
                digest = aux["Digest"]
            status = event.get("status")
            if isinstance(status, str) and (found := _PUSHED_DIGEST.search(status)) and digest is None:
                digest = found.group(1)
            if isinstance(status, str) and status:
                layer = str(event.get("id", ""))
                # Per-layer state changes only: not every "Pushing" progress tick.
                if last.get(layer) != status:
                    last[layer] = status
                    progress(f"{layer}: {status}" if layer else status)
    except docker.errors.ImageNotFound:
        raise BuildError(
            f"cannot push {image.reference}: no such image on this engine",
            hint="build it first (the engine may have pruned it)",
        ) from None
    except docker.errors.APIError as error:
        raise BuildError(
            f"pushing {image.reference} failed: {_api_message(error)}", hint=_push_hint(registry, "")
        ) from None
    except _connection_errors() as error:
        raise EngineError(
            f"the Docker engine at {engine_address()} stopped answering while pushing {image.reference}: "
            f"{_short(str(error))}",
            hint=ENGINE_HINT,
        ) from None
    if digest is None:
        raise BuildError(
            f"pushing {image.reference} to {registry} ended without a digest from the registry",
            hint="push again; if it persists, check the registry's log",
        )
    return digest


_MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)
REGISTRY_CHECK_TIMEOUT_S = 5


def _already_pushed(client: docker.DockerClient, image: BuiltImage, repository: str, tag: str) -> str | None:
    """The registry's digest when it already holds this very image under the tag, else None.

    Content-hash tags make pushes of an unchanged job no-ops, but `docker push` still costs the engine
    a round of layer checks per call (~100 ms), which dominates submitting thousands of runs. One HEAD
    of the tag's manifest answers the same question in a millisecond: when its digest is one the local
    image was pushed or pulled as (RepoDigests), the registry has it. Anything unexpected (auth, TLS,
    an older registry) answers None and the push goes ahead as before.
    """
    import urllib.error
    import urllib.request

    try:
        known = set(client.images.get(image.reference).attrs.get("RepoDigests") or [])
    except Exception:  # the push itself reports a missing image properly
        return None
    if not any(entry.startswith(f"{repository}@") for entry in known):
        return None
    registry, name = repository.split("/", 1)
    request = urllib.request.Request(
        f"http://{registry}/v2/{name}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": ", ".join(_MANIFEST_TYPES)},
    )
    try:
        with urllib.request.urlopen(request, timeout=REGISTRY_CHECK_TIMEOUT_S) as answer:
            digest = answer.headers.get("Docker-Content-Digest")
    except (OSError, urllib.error.URLError, ValueError):
        return None
    return digest if digest and f"{repository}@{digest}" in known else None


# --- building -----------------------------------------------------------------------------------


def _local_image(client: docker.DockerClient, reference: str) -> str | None:
    import docker

    try:
        image = client.images.get(reference)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as error:
        raise EngineError(f"the Docker engine cannot look up {reference}: {_api_message(error)}") from None
    return str(image.id)


def _connection_errors() -> tuple[type[Exception], ...]:
    import requests

    return (requests.exceptions.ConnectionError, requests.exceptions.Timeout)


def _engine_errors() -> tuple[type[Exception], ...]:
    """Whatever a call to the engine may raise: its refusals and lost connections."""
    import docker

    return (docker.errors.DockerException, *_connection_errors())


class _ContextError(Exception):
    """Raised inside the context stream; the real error waits in ContextStream.error."""


class ContextStream:
    """The build context as a tar, generated member by member: no copy of the context is made.

    Times are 0, owners root, modes as the recipe gives them; symbolic links travel as links.
    An error reading the context is kept in ``error`` (the HTTP layer would otherwise report it as
    a connection failure) and re-raised by the caller.
    """

    def __init__(self, recipe: BuildRecipe, context_dir: Path, wheel: Path):
        self.recipe = recipe
        self.context_dir = context_dir
        self.wheel = wheel
        self.error: RunnerError | None = None
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        try:
            for entry in self.recipe.entries(self.context_dir):
                yield from self._entry(entry)
            yield from self._file(self.recipe.runner_wheel, 0o644, self.wheel, follow=True)
            yield from self._finish()
        except OSError as error:
            name = error.filename or "the context"
            self.error = RunnerError(
                f"cannot read {name} while sending the build context: {error.strerror or error}",
                hint="try again once nothing writes to the context, or leave the file out with .dockerignore",
            )
            raise _ContextError(str(self.error)) from None

    def _header(self, name: str, kind: bytes, mode: int, size: int = 0, link: str = "") -> bytes:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mode = mode
        info.size = size
        info.linkname = link
        info.mtime = 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        self.sent += len(header)
        return header

    def _entry(self, entry: BuildEntry) -> Iterator[bytes]:
        if entry.kind == "dir":
            yield self._header(entry.name, tarfile.DIRTYPE, entry.mode)
        elif entry.kind == "symlink":
            assert entry.source is not None
            target = str((self.context_dir / entry.source).readlink())
            yield self._header(entry.name, tarfile.SYMTYPE, 0o777, link=target)
        elif entry.data is not None:
            yield self._header(entry.name, tarfile.REGTYPE, entry.mode, len(entry.data))
            self.sent += len(entry.data)
            yield entry.data + self._padding(len(entry.data))
        else:
            assert entry.source is not None
            yield from self._file(entry.name, entry.mode, self.context_dir / entry.source, follow=False)

    def _file(self, name: str, mode: int, path: Path, *, follow: bool) -> Iterator[bytes]:
        flags = os.O_RDONLY | (0 if follow else getattr(os, "O_NOFOLLOW", 0))
        descriptor = os.open(path, flags | getattr(os, "O_NONBLOCK", 0))
        try:
            info = os.fstat(descriptor)
            if not stat.S_ISREG(info.st_mode):
                raise OSError(errno.EINVAL, "is no longer a regular file", str(path))
            os.set_blocking(descriptor, True)
            size = info.st_size
            yield self._header(name, tarfile.REGTYPE, mode, size)
            left = size
            while left:
                chunk = os.read(descriptor, min(_CHUNK, left))
                if not chunk:
                    raise OSError(errno.EIO, "it shrank while being read", str(path))
                left -= len(chunk)
                self.sent += len(chunk)
                yield chunk
            yield self._padding(size)
        finally:
            os.close(descriptor)

    def _padding(self, size: int) -> bytes:
        pad = b"\0" * (-size % _BLOCK)
        self.sent += len(pad)
        return pad

    def _finish(self) -> Iterator[bytes]:
        end = 2 * _BLOCK
        end += -(self.sent + end) % _RECORD
        yield b"\0" * end


@dataclass
class _BuildLog:
    """Follows a classic-builder output stream: the current step, its last lines, the images it made."""

    progress: Progress
    step: str | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    created: list[str] = field(default_factory=list)  # short ids of the images this build committed
    _partial: str = ""
    _new: bool = False

    @property
    def lines(self) -> list[str]:
        return list(self.tail)

    def feed(self, text: str) -> None:
        self._partial += text
        *complete, self._partial = self._partial.split("\n")
        for line in complete:
            self._line(line)

    def flush(self) -> None:
        if self._partial:
            self._line(self._partial)
            self._partial = ""

    def status(self, event: Mapping[str, Any]) -> None:
        text = " ".join(str(event[key]) for key in ("id", "status") if event.get(key))
        if text:
            self.progress(text)

    def _line(self, raw: str) -> None:
        line = _ANSI.sub("", raw).rstrip()
        if not line.strip():
            return
        if _STEP.match(line):
            self.step = line
            self.tail.clear()
            # A step's image is new unless it came from the cache, or is the base (FROM).
            self._new = not line.split(" : ", 1)[-1].startswith("FROM ")
            self.progress(line)
            return
        if line.startswith(" ---> "):
            rest = line[len(" ---> ") :].strip()
            if _IMAGE_ID.fullmatch(rest):
                if self._new:
                    self.created.append(rest)
                self._new = False
            elif rest == "Using cache":
                self._new = False
                self.progress(line)
            return
        if line.startswith(_CHATTER):
            return
        self.tail.append(line)
        self.progress(line)


def _build(
    client: docker.DockerClient,
    recipe: BuildRecipe,
    *,
    context_dir: Path,
    wheel: Path,
    reference: str,
    tag: str,
    progress: Progress,
) -> str:
    import docker

    stream = ContextStream(recipe, context_dir, wheel)
    log = _BuildLog(progress)
    labels = {MANAGED_BY: MANAGER, JOB_LABEL: recipe.job, TAG_LABEL: tag}
    failure: BuildError | None = None
    try:
        events = client.api.build(
            fileobj=cast(Any, iter(stream)),
            custom_context=True,
            tag=reference,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
            labels=labels,
            timeout=None,  # no read timeout: a step may print nothing for a long while
        )
        for event in events:
            if not isinstance(event, dict):
                continue
            if isinstance(event.get("stream"), str):
                log.feed(event["stream"])
            elif "error" in event or "errorDetail" in event:
                log.flush()
                failure = _step_error(client, recipe, reference, log, _event_error(event))
                break
            elif isinstance(event.get("status"), str):
                log.status(event)
        log.flush()
    except _ContextError:
        _cleanup(client, log)
        assert stream.error is not None
        raise stream.error from None
    except docker.errors.APIError as error:
        _cleanup(client, log)
        if stream.error is not None:
            raise stream.error from None
        raise BuildError(
            f"the Docker engine refused to build {reference}: {_api_message(error)}",
            hint="likely a bug in the runner's Dockerfile template; run again with --debug and report it",
        ) from None
    except _connection_errors() as error:
        _cleanup(client, log)
        if stream.error is not None:
            raise stream.error from None
        raise EngineError(
            f"the Docker engine at {engine_address()} stopped answering while building {reference}: "
            f"{_short(str(error))}",
            hint=ENGINE_HINT,
        ) from None
    except BaseException:
        _cleanup(client, log)
        raise
    if failure is not None:
        _cleanup(client, log)
        raise failure
    image = _local_image(client, reference)
    if image is None:
        raise BuildError(
            f"the build of {reference} ended without an error, but the engine has no such image",
            hint="build again; if it persists, check the engine's log",
            step=log.step,
            output=log.lines,
        )
    return image


def _cleanup(client: docker.DockerClient, log: _BuildLog) -> None:
    """Remove the untagged images a failed build committed (the engine already removed its containers).

    Only images this build created (not ones it took from the cache) and only dangling ones: removing
    such an image also removes its untagged parents that nothing else uses, back to the cached ones.
    """

    if not log.created:
        return
    try:
        dangling = [str(image.id) for image in client.images.list(filters={"dangling": True})]
    except _engine_errors():
        return
    for short in reversed(log.created):
        for full in dangling:
            if full.removeprefix("sha256:").startswith(short):
                try:
                    client.api.remove_image(full, force=False, noprune=False)
                except _engine_errors():
                    pass


def _step_error(
    client: docker.DockerClient, recipe: BuildRecipe, reference: str, log: _BuildLog, error: str
) -> BuildError:
    step = log.step
    lines = log.lines
    if step is None or step.split(" : ", 1)[-1].startswith("FROM "):
        present = _local_image(client, recipe.base) is not None
        if not present:
            return BuildError(
                f"base image {recipe.base} is not on this machine and cannot be pulled: {_short(error)}",
                hint=(
                    f"pull it where its registry is reachable (docker pull {recipe.base}) or load it "
                    f"(docker load -i FILE.tar), or set spec.image.base to an image this machine has"
                ),
                step=step,
                output=lines,
            )
    match = _NONZERO.match(error.strip())
    reason = f"it exited with code {match.group(1)}" if match else _short(error)
    shown = _shown_step(step) if step else "the start of the build"
    message = f"building {reference} failed at {shown}: {reason}"
    if lines:
        message += "\nlast lines of its output:\n" + "\n".join(f"  | {line}" for line in lines)
    return BuildError(message, hint=_build_hint(recipe, step or "", lines), step=step, output=lines)


def _shown_step(step: str) -> str:
    step = " ".join(step.split())  # the builder joins continued lines with their indentation
    return step if len(step) <= _STEP_SHOWN else step[: _STEP_SHOWN - 3] + "..."


def _build_hint(recipe: BuildRecipe, step: str, lines: Sequence[str]) -> str:
    text = "\n".join(lines)
    instruction = step.split(" : ", 1)[-1]
    if "No module named pip" in text:
        return (
            f"the base image {recipe.base} has no pip: choose a base with pip, "
            "or add python3-pip to spec.image.apt"
        )
    if "requires a different Python" in text and recipe.runner_wheel.rsplit("/", 1)[-1] in instruction:
        return f"the runner's agent needs Python 3.11 or newer; {recipe.base} has an older one"
    if "pip install" in instruction:
        if recipe.wheelhouse and ("No matching distribution" in text or "Could not find a version" in text):
            return (
                "the context's wheelhouse/ has no wheel that satisfies a requirement (pip runs offline "
                "from it): add it with pip download -d wheelhouse -r requirements.txt --only-binary=:all: "
                "--python-version <the base's> --platform manylinux2014_x86_64"
            )
        if not recipe.wheelhouse and any(
            sign in text for sign in ("SSL", "Max retries", "Name or service not known", "Could not fetch")
        ):
            return (
                "the build cannot reach the package index; build offline instead: put the wheels in a "
                "wheelhouse/ directory at the top of the context (see images/README.md)"
            )
        return "check the requirements (names, versions, file syntax) against the output above"
    if "apt-get" in instruction:
        return "check the names in spec.image.apt, and that the build reaches a Debian or Ubuntu mirror"
    return "the lines above are the end of the failing step's output; fix the cause and build again"


# --- messages -----------------------------------------------------------------------------------


def _event_error(event: Mapping[str, Any]) -> str:
    detail = event.get("errorDetail")
    if isinstance(detail, dict) and detail.get("message"):
        return str(detail["message"])
    return str(event.get("error") or "unknown error")


def _api_message(error: Exception) -> str:
    explanation = getattr(error, "explanation", None)
    return _short(str(explanation or error))


def _short(text: str, limit: int = 600) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _push_hint(registry: str, error: str) -> str:
    lowered = error.lower()
    if "does not exist locally" in lowered:
        return "build the image first (ensure_image); the engine may have pruned it"
    if "connection refused" in lowered or "no such host" in lowered or "dial tcp" in lowered:
        return f"no registry answers at {registry}; start it (scripts/engine.sh start runs 127.0.0.1:5000)"
    if "unauthorized" in lowered or "denied" in lowered:
        return f"log in to {registry} (docker login {registry}) or check your rights to push there"
    if "http response to https client" in lowered:
        return f"{registry} speaks plain HTTP: add it to the engine's insecure-registries"
    return f"check that {registry} is up and accepts pushes"
