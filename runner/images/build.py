"""Build job images on the local Docker engine (docker SDK, imported lazily).

``ensure_image`` turns a manifest and its context into ``runner/<job>:<content-hash>``: when that
image is already on the engine it returns at once and builds nothing; otherwise it learns the base
image's Python (runner.images.target, cached per base image), resolves the agent's packages and the
job's requirements on the host into cached wheelhouses (runner.images.wheelhouse; a wheelhouse/ in
the context wins for the job's), streams the build context (``BuildRecipe.entries``, the runner's
wheel and those wheels, runner.images.tarstream) to the engine as a tar, says the build's steps in
words to ``progress`` while its raw output goes to a log file (runner.images.buildlog), and on
failure raises ``BuildError`` naming the failing step with the end of its output and the log file,
after removing what the failed build left (its containers go with ``forcerm``, its untagged images
here). Pushing a built image is runner.images.push; the engine client and its errors are
runner.images.engine.

RUNNER_HOME/cache holds what builds reuse (``wheels/``: the runner's wheel; ``targets/``: the bases'
Pythons; ``wheelhouse/``: resolved wheels); RUNNER_HOME/builds the last build log of each job.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from runner.config import format_size, load_settings
from runner.errors import RunnerError
from runner.images.buildlog import BuildLog, missing_base_error, step_error
from runner.images.engine import (
    BuildError,
    Progress,
    api_message,
    connect_engine,
    connection_errors,
    engine_errors,
    event_error,
    is_error_event,
    local_image,
    quick_image_id,
    stopped_answering,
)
from runner.images.hashing import image_reference, image_tag
from runner.images.recipe import (
    AGENT_DIR,
    BUILD_WHEELHOUSE,
    BuildRecipe,
    agent_requirements_text,
    build_recipe,
)
from runner.images.target import PythonTarget, python_target
from runner.images.tarstream import ContextStream, StreamAborted
from runner.images.wheel import runner_version, runner_wheel
from runner.images.wheelhouse import Wheelhouse, plural, wheelhouse_for
from runner.spec.labels import JOB_LABEL, MANAGED_BY, MANAGER
from runner.spec.model import JobManifest

if TYPE_CHECKING:
    import docker


TAG_LABEL = "runner.dev/image-tag"


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


def image_name(job: str, registry: str | None) -> str:
    """``runner/<job>``, or ``<registry>/runner/<job>`` when the image goes to a registry."""
    return image_reference(registry or "", job, "latest").rsplit(":", 1)[0]


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
    log_dir: Path | None = None,
) -> BuiltImage:
    """The job's image on the local engine, built only when no image with its content hash is there.

    context_dir is spec.image.context resolved against the manifest's directory; skip lists
    directories left out of it (the runner's home when it lies inside). cache_dir holds what builds
    reuse (default RUNNER_HOME/cache), log_dir the build logs (default RUNNER_HOME/builds).
    """
    started = time.monotonic()
    recipe, tag, reference = planned_reference(manifest, context_dir, registry=registry, skip=skip)
    if client is None and (found := quick_image_id(reference)) is not None:
        return BuiltImage(reference, tag, False, time.monotonic() - started, found)
    client = connect_engine() if client is None else client
    existing = local_image(client, reference)
    if existing is not None:
        return BuiltImage(reference, tag, False, time.monotonic() - started, existing)
    if cache_dir is None or log_dir is None:
        home = load_settings().home
        cache_dir = cache_dir or home / "cache"
        log_dir = log_dir or home / "builds"
    log_path = log_dir / f"{recipe.job}-{tag}.log"
    progress(f"building {reference} from {recipe.base} (build log: {log_path})")
    inputs = build_inputs(client, recipe, cache_dir, log_dir, progress)
    wheel = runner_wheel(cache_dir / "wheels")
    image_id = _build(
        client,
        recipe,
        context_dir=context_dir,
        wheel=wheel,
        inputs=inputs,
        reference=reference,
        tag=tag,
        progress=progress,
        log_path=log_path,
    )
    return BuiltImage(reference, tag, True, time.monotonic() - started, image_id)


@dataclass(frozen=True)
class BuildInputs:
    """What a build takes from outside the job's context: wheels resolved on the host."""

    target: PythonTarget
    agent: Wheelhouse
    job: Wheelhouse | None  # None when the job has no requirements or brings its own wheelhouse/

    def extra(self) -> list[tuple[str, list[Path]]]:
        out = [(AGENT_DIR, self.agent.files())]
        if self.job is not None:
            out.append((BUILD_WHEELHOUSE, self.job.files()))
        return out

    def notes(self) -> dict[str, str]:
        notes = {"agent-wheels": _wheels(self.agent)}
        if self.job is not None:
            notes["job-wheels"] = _wheels(self.job)
        return notes


def _wheels(wheelhouse: Wheelhouse) -> str:
    return f"{plural(len(wheelhouse.wheels), 'wheel')}, {format_size(wheelhouse.size)}"


def build_inputs(
    client: docker.DockerClient, recipe: BuildRecipe, cache: Path, logs: Path, progress: Progress
) -> BuildInputs:
    """The base's Python (learned once per base image) and the wheels for it, resolved on the host."""
    base_id = local_image(client, recipe.base) or _pull_base(client, recipe.base, progress)
    target = python_target(client, recipe.base, base_id, cache / "targets")
    wheelhouses = cache / "wheelhouse"
    agent = wheelhouse_for(
        agent_requirements_text(recipe.agent_requirements),
        target,
        wheelhouses,
        what="the agent's packages",
        progress=progress,
        log=logs / f"{recipe.job}-agent-download.log",
    )
    job = None
    if recipe.host_wheels:
        assert recipe.requirements_text is not None
        job = wheelhouse_for(
            recipe.requirements_text,
            target,
            wheelhouses,
            what="the job's requirements",
            progress=progress,
            log=logs / f"{recipe.job}-download.log",
        )
    return BuildInputs(target, agent, job)


def _pull_base(client: docker.DockerClient, base: str, progress: Progress) -> str:
    """Pull a base image the engine lacks (as the builder's FROM would); its id, or a BuildError."""
    progress(f"pulling base image {base}")
    started = time.monotonic()
    try:
        image = client.images.pull(base)
    except engine_errors() as error:
        raise BuildError(
            f"base image {base} is not on this machine and cannot be pulled: {api_message(error)}",
            hint=(
                f"pull it where its registry is reachable (docker pull {base}) or load it "
                f"(docker load -i FILE.tar), or set spec.image.base to an image this machine has"
            ),
            step=f"FROM {base}",
        ) from None
    progress(f"pulled {base} in {time.monotonic() - started:.1f}s")
    return str(image.id)


def _build(
    client: docker.DockerClient,
    recipe: BuildRecipe,
    *,
    context_dir: Path,
    wheel: Path,
    inputs: BuildInputs,
    reference: str,
    tag: str,
    progress: Progress,
    log_path: Path,
) -> str:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w", encoding="utf-8") as raw:
        return _build_logged(
            client,
            recipe,
            ContextStream(recipe, context_dir, wheel, extra=inputs.extra()),
            BuildLog(progress, raw=raw, path=str(log_path), notes=inputs.notes()),
            reference=reference,
            tag=tag,
        )


def _build_logged(
    client: docker.DockerClient,
    recipe: BuildRecipe,
    stream: ContextStream,
    log: BuildLog,
    *,
    reference: str,
    tag: str,
) -> str:
    labels = {MANAGED_BY: MANAGER, JOB_LABEL: recipe.job, TAG_LABEL: tag}
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
            # Every pip install is offline (wheels resolved on the host): the build needs no network,
            # and gets none, unless apt-get must reach a mirror (spec.image.apt).
            network_mode=None if recipe.apt else "none",
            timeout=None,  # no read timeout: a step may print nothing for a long while
        )
        failure = _follow_build(client, events, recipe, reference, log)
    except BaseException as error:
        _cleanup(client, log)
        translated = _build_broke_off(error, stream, reference)
        if translated is None:
            raise
        raise translated from None
    if failure is not None:
        _cleanup(client, log)
        raise failure
    image = local_image(client, reference)
    if image is None:
        raise BuildError(
            f"the build of {reference} ended without an error, but the engine has no such image",
            hint="build again; if it persists, check the engine's log",
            step=log.step,
            output=log.lines,
        )
    return image


def _follow_build(
    client: docker.DockerClient, events: Iterable[Any], recipe: BuildRecipe, reference: str, log: BuildLog
) -> BuildError | None:
    """Feed the build's output to log; the BuildError of the step that failed, or None."""
    for event in events:
        if not isinstance(event, dict):
            continue
        if isinstance(event.get("stream"), str):
            log.feed(event["stream"])
        elif is_error_event(event):
            log.flush()
            return _failure(client, recipe, reference, log, event_error(event))
        elif isinstance(event.get("status"), str):
            log.status(event)
    log.flush()
    return None


def _failure(
    client: docker.DockerClient, recipe: BuildRecipe, reference: str, log: BuildLog, error: str
) -> BuildError:
    if log.at_base and local_image(client, recipe.base) is None:
        return missing_base_error(recipe, error, log)
    return step_error(recipe, reference, log, error)


def _build_broke_off(error: BaseException, stream: ContextStream, reference: str) -> RunnerError | None:
    """What to raise when the build request broke off with error; None: error itself.

    An error reading the context comes first: the engine only saw the stream end early.
    """
    import docker

    if isinstance(error, StreamAborted):
        assert stream.error is not None
        return stream.error
    if not isinstance(error, (docker.errors.APIError, *connection_errors())):
        return None
    if stream.error is not None:
        return stream.error
    if isinstance(error, docker.errors.APIError):
        return BuildError(
            f"the Docker engine refused to build {reference}: {api_message(error)}",
            hint="likely a bug in the runner's Dockerfile template; run again with --debug and report it",
        )
    return stopped_answering(f"building {reference}", error)


def _cleanup(client: docker.DockerClient, log: BuildLog) -> None:
    """Remove the untagged images a failed build committed (the engine already removed its containers).

    Only images this build created (not ones it took from the cache) and only dangling ones: removing
    such an image also removes its untagged parents that nothing else uses, back to the cached ones.
    """

    if not log.created:
        return
    try:
        dangling = [str(image.id) for image in client.images.list(filters={"dangling": True})]
    except engine_errors():
        return
    for short in reversed(log.created):
        for full in dangling:
            if full.removeprefix("sha256:").startswith(short):
                try:
                    client.api.remove_image(full, force=False, noprune=False)
                except engine_errors():
                    pass
