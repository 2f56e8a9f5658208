"""Base images for the container tests, built on this machine because none can be pulled here.

- `python_base()` -> "runner-test/python:bookworm": Debian bookworm from debootstrap (minbase, with
  python3, python3-venv, python3-pip and ca-certificates), imported with `docker import`. It has
  `python3` but no `python`, like many real bases.
- `tensorflow_base()` -> "tensorflow/tensorflow:2.21.0-gpu": a stand-in for the image the manifests
  default to, FROM the python base, with TensorFlow 2.21.0 and its dependencies installed from wheels
  downloaded on the host (builds cannot reach PyPI: containers do not trust this machine's CA) into a
  virtualenv, /opt/tf, whose bin comes first on PATH, so `python` and `pip` are the venv's. It carries
  the label `runner.dev/stand-in=true`. CPU-only TensorFlow: the real image has CUDA, this one has not.
- `example_wheelhouse(dest)`: wheels for jobs/requirements.txt (minus what the TensorFlow stand-in
  already has), for air-gapped job image builds: put them in a job context's `wheelhouse/`.

Each is built once per machine and reused while its tag exists and its `runner.dev/recipe` label
matches the recipe below (a hash of everything that goes into it), so changing the recipe rebuilds it;
the TensorFlow stand-in also rebuilds when the python base under it was rebuilt. Downloads and the
debootstrap tarball are cached under RUNNER_TEST_CACHE (default /var/cache/runner-test), so rebuilding an
image does not download again. A file lock keeps two processes from building at once.

    .venv/bin/python -m tests.support.engine.base_images [--force]     build both, print ids and timings
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.support.engine import engine

if TYPE_CHECKING:
    import docker

# Bump to rebuild everything when something the hashes below do not see has changed.
RECIPE_VERSION = "1"

PYTHON_TAG = "runner-test/python:bookworm"
TENSORFLOW_VERSION = "2.21.0"
TENSORFLOW_TAG = f"tensorflow/tensorflow:{TENSORFLOW_VERSION}-gpu"

LABEL_RECIPE = "runner.dev/recipe"
LABEL_STAND_IN = "runner.dev/stand-in"
LABEL_STAND_IN_FOR = "runner.dev/stand-in-for"
LABEL_BASE_ID = "runner.dev/base-id"
LABEL_TEST_IMAGE = "runner.dev/test-image"

SUITE = "bookworm"
DEBIAN_PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates")
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PYTHON_CHANGES = (
    f"ENV PATH={IMAGE_PATH}",
    "ENV LANG=C.UTF-8",
    'CMD ["/bin/bash"]',
)

# Wheels for the container's Python (Debian bookworm: CPython 3.11.2, glibc 2.36).
PYTHON_VERSION = "3.11"
PLATFORMS = ("manylinux2014_x86_64", *(f"manylinux_2_{minor}_x86_64" for minor in range(17, 37)))

TENSORFLOW_DOCKERFILE = f"""\
FROM {PYTHON_TAG}
COPY wheels /tmp/wheels
RUN python3 -m venv /opt/tf \\
    && /opt/tf/bin/python -m pip install --no-cache-dir --no-index --find-links /tmp/wheels \\
        --disable-pip-version-check tensorflow=={TENSORFLOW_VERSION} \\
    && rm -rf /tmp/wheels
ENV PATH=/opt/tf/bin:{IMAGE_PATH} VIRTUAL_ENV=/opt/tf
"""

REPO = engine.REPO
EXAMPLE_REQUIREMENTS = REPO / "jobs" / "requirements.txt"

# Every wait is bounded; these are generous for a first build on a slow mirror.
DEBOOTSTRAP_TIMEOUT_S = 1200
APT_TIMEOUT_S = 600
TAR_TIMEOUT_S = 600
IMPORT_TIMEOUT_S = 600
DOWNLOAD_TIMEOUT_S = 1800
BUILD_TIMEOUT_S = 1800
LOCK_TIMEOUT_S = 3600
HEARTBEAT_S = 15.0


class BaseImageUnavailable(RuntimeError):
    """This machine cannot build a base image (not root, no network for downloads, no engine)."""


class BaseImageBuildFailed(RuntimeError):
    """Building a base image failed although everything it needs was there: a bug in the recipe."""


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    id: str
    rebuilt: bool
    steps: tuple[tuple[str, float], ...] = field(default=())


def say(message: str) -> None:
    print(f"[base-images] {message}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    """RUNNER_TEST_CACHE, else /var/cache/runner-test, else (not writable) ~/.cache/runner-test."""
    configured = os.environ.get("RUNNER_TEST_CACHE")
    candidates = [Path(configured)] if configured else [Path("/var/cache/runner-test")]
    if not configured:
        candidates.append(Path.home() / ".cache" / "runner-test")
    for path in candidates:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(path, os.W_OK):
            return path
    raise BaseImageUnavailable(f"no writable cache directory among {', '.join(map(str, candidates))}")


def digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def python_recipe() -> str:
    return digest("python", RECIPE_VERSION, SUITE, DEBIAN_PACKAGES, PYTHON_CHANGES)


def tensorflow_wheels_recipe() -> str:
    return digest("tensorflow-wheels", RECIPE_VERSION, TENSORFLOW_VERSION, PYTHON_VERSION, PLATFORMS)


def tensorflow_recipe() -> str:
    return digest("tensorflow", python_recipe(), tensorflow_wheels_recipe(), TENSORFLOW_DOCKERFILE)


# --- the lock --------------------------------------------------------------------------------------


class _Process:
    """Per-process state: how deep this process holds the lock, its long-lived client."""

    lock_depth = 0
    build_client: docker.DockerClient | None = None


@contextlib.contextmanager
def build_lock(timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Machine-wide exclusive lock on the cache (fcntl), re-entrant within this process."""
    if _Process.lock_depth:
        _Process.lock_depth += 1
        try:
            yield
        finally:
            _Process.lock_depth -= 1
        return
    path = cache_dir() / ".lock"
    with path.open("a+") as handle:
        give_up = time.monotonic() + timeout
        next_note = time.monotonic()
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                now = time.monotonic()
                if now >= give_up:
                    raise BaseImageUnavailable(
                        f"another process held {path} for {timeout:.0f}s; is a base image build stuck?"
                    ) from None
                if now >= next_note:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    say(f"waiting for {holder} to finish building base images (lock {path})")
                    next_note = now + 30
                time.sleep(1)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        _Process.lock_depth = 1
        try:
            yield
        finally:
            _Process.lock_depth = 0
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- running things, bounded ---------------------------------------------------------------------


def run_logged(
    command: Sequence[str],
    what: str,
    log: Path,
    timeout: float,
    *,
    error: type[RuntimeError] = BaseImageBuildFailed,
    env: dict[str, str] | None = None,
) -> float:
    """Run command with its output in log, a heartbeat on stderr, killed after timeout; return seconds."""
    start = time.monotonic()
    log.parent.mkdir(parents=True, exist_ok=True)
    say(f"{what} (log: {log})")
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
        next_beat = start + HEARTBEAT_S
        while True:
            try:
                code = process.wait(timeout=1)
                break
            except subprocess.TimeoutExpired:
                now = time.monotonic()
                if now - start > timeout:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=30)
                    raise error(f"{what} did not finish in {timeout:.0f}s; see {log}") from None
                if now >= next_beat:
                    say(f"{what}: still running after {now - start:.0f}s")
                    next_beat += HEARTBEAT_S
    seconds = time.monotonic() - start
    if code != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise error(f"{what} exited {code}; the end of {log}:\n{tail}")
    say(f"{what}: done in {seconds:.1f}s")
    return seconds


def build_client() -> docker.DockerClient:
    """A client whose requests may take as long as an image build step (a silent pip install)."""
    if _Process.build_client is None:
        try:
            _Process.build_client = engine.connect(timeout=BUILD_TIMEOUT_S)
        except engine.EngineUnavailable as error:
            raise BaseImageUnavailable(str(error)) from error
    return _Process.build_client


def current(client: docker.DockerClient, tag: str, recipe: str, **labels: str) -> str | None:
    """The id of the image tagged tag when it was built from this recipe (and has these labels)."""
    import docker

    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None
    found = image.labels or {}
    wanted = {LABEL_RECIPE: recipe, **labels}
    if any(found.get(key) != value for key, value in wanted.items()):
        return None
    return str(image.id)


def image_id(client: docker.DockerClient, tag: str) -> str | None:
    import docker

    try:
        return str(client.images.get(tag).id)
    except docker.errors.ImageNotFound:
        return None


def drop_replaced(client: docker.DockerClient, old: str | None, new: str) -> None:
    """Remove the image a rebuild replaced, unless something (a container, a child image) still uses it."""
    import docker

    if old and old != new:
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(old)


# --- the python base -------------------------------------------------------------------------------


def python_base(force: bool = False) -> str:
    """The tag of the python base image, built when missing or out of date."""
    return ensure_python_base(force=force).tag


def ensure_python_base(force: bool = False) -> BuiltImage:
    client = build_client()
    recipe = python_recipe()
    if not force and (found := current(client, PYTHON_TAG, recipe)):
        return BuiltImage(PYTHON_TAG, found, rebuilt=False)
    with build_lock():
        if not force and (found := current(client, PYTHON_TAG, recipe)):
            return BuiltImage(PYTHON_TAG, found, rebuilt=False)
        steps: list[tuple[str, float]] = []
        tarball = python_rootfs(recipe, steps, force=force)
        old = image_id(client, PYTHON_TAG)
        changes = [
            *PYTHON_CHANGES,
            f"LABEL {LABEL_RECIPE}={recipe}",
            f"LABEL {LABEL_TEST_IMAGE}=python-{SUITE}",
        ]
        command = [engine.DOCKER_CLI, "import"]
        for change in changes:
            command += ["--change", change]
        command += [str(tarball), PYTHON_TAG]
        log = cache_dir() / "logs" / "python-import.log"
        steps.append(
            ("docker import", run_logged(command, f"docker import {PYTHON_TAG}", log, IMPORT_TIMEOUT_S))
        )
        new = current(client, PYTHON_TAG, recipe)
        if new is None:
            raise BaseImageBuildFailed(f"{PYTHON_TAG} lacks its recipe label after docker import; see {log}")
        drop_replaced(client, old, new)
        return BuiltImage(PYTHON_TAG, new, rebuilt=True, steps=tuple(steps))


def python_rootfs(recipe: str, steps: list[tuple[str, float]], force: bool = False) -> Path:
    """The cached tarball of the debootstrapped root file system, made when missing."""
    cache = cache_dir()
    tarball = cache / f"python-{SUITE}-{recipe[:16]}.tar"
    if tarball.exists() and not force:
        say(f"reusing {tarball}")
        return tarball
    if os.geteuid() != 0:
        raise BaseImageUnavailable(
            f"building {PYTHON_TAG} needs root (debootstrap); run `sudo .venv/bin/python -m "
            "tests.support.engine.base_images` once, or run the tests as root"
        )
    if shutil.which("debootstrap") is None:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        logs = cache / "logs"
        steps.append(
            (
                "apt-get update",
                run_logged(
                    ["apt-get", "update", "-qq"],
                    "apt-get update",
                    logs / "apt.log",
                    APT_TIMEOUT_S,
                    error=BaseImageUnavailable,
                    env=env,
                ),
            )
        )
        steps.append(
            (
                "install debootstrap",
                run_logged(
                    ["apt-get", "install", "-y", "-qq", "debootstrap"],
                    "apt-get install debootstrap",
                    logs / "apt-install.log",
                    APT_TIMEOUT_S,
                    error=BaseImageUnavailable,
                    env=env,
                ),
            )
        )
    for stale in cache.glob(f"python-{SUITE}-*.tar*"):
        stale.unlink()
    rootfs = cache / f"rootfs-{SUITE}"
    remove_tree(rootfs)
    mirror = os.environ.get("RUNNER_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
    command = [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(DEBIAN_PACKAGES)}",
        SUITE,
        str(rootfs),
        mirror,
    ]
    what = f"debootstrap {SUITE} (about 40 s the first time)"
    log = cache / "logs" / "debootstrap.log"
    try:
        steps.append(
            ("debootstrap", run_logged(command, what, log, DEBOOTSTRAP_TIMEOUT_S, error=BaseImageUnavailable))
        )
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / leftover).glob("*"):
                if entry.is_file():
                    entry.unlink()
        partial = tarball.with_suffix(".tar.partial")
        tar = [
            "tar",
            "--numeric-owner",
            "--xattrs",
            "--xattrs-include=*",
            "-C",
            str(rootfs),
            "-cf",
            str(partial),
            ".",
        ]
        steps.append(
            (
                "tar rootfs",
                run_logged(tar, "tar the root file system", cache / "logs" / "tar.log", TAR_TIMEOUT_S),
            )
        )
        partial.rename(tarball)
    finally:
        remove_tree(rootfs)
    return tarball


def remove_tree(path: Path) -> None:
    """rm -rf path, after making sure nothing is mounted below it (debootstrap mounts /proc and /sys)."""
    if not path.exists():
        return
    root = str(path.resolve())
    for _ in range(3):
        mounts = [
            line.split()[1]
            for line in Path("/proc/mounts").read_text().splitlines()
            if line.split()[1] == root or line.split()[1].startswith(root + "/")
        ]
        if not mounts:
            break
        for mount in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], check=False, timeout=60, capture_output=True)
    else:
        raise BaseImageBuildFailed(f"file systems are still mounted below {root}; not removing it")
    shutil.rmtree(path)


# --- the TensorFlow stand-in -----------------------------------------------------------------------


def tensorflow_base(force: bool = False) -> str:
    """The tag of the TensorFlow stand-in, built (with the python base) when missing or out of date."""
    return ensure_tensorflow_base(force=force).tag


def ensure_tensorflow_base(force: bool = False) -> BuiltImage:
    client = build_client()
    recipe = tensorflow_recipe()
    base = ensure_python_base()
    if not force and (found := current(client, TENSORFLOW_TAG, recipe, **{LABEL_BASE_ID: base.id})):
        return BuiltImage(TENSORFLOW_TAG, found, rebuilt=False)
    with build_lock():
        base = ensure_python_base()
        if not force and (found := current(client, TENSORFLOW_TAG, recipe, **{LABEL_BASE_ID: base.id})):
            return BuiltImage(TENSORFLOW_TAG, found, rebuilt=False)
        steps = list(base.steps)
        context = tensorflow_context(steps)
        (context / "Dockerfile").write_text(TENSORFLOW_DOCKERFILE)
        labels = {
            LABEL_RECIPE: recipe,
            LABEL_BASE_ID: base.id,
            LABEL_STAND_IN: "true",
            LABEL_STAND_IN_FOR: (
                f"{TENSORFLOW_TAG}: CPU-only TensorFlow {TENSORFLOW_VERSION} from PyPI wheels on Debian "
                f"{SUITE}, built by tests/support/engine/base_images.py"
            ),
            LABEL_TEST_IMAGE: f"tensorflow-{TENSORFLOW_VERSION}",
        }
        old = image_id(client, TENSORFLOW_TAG)
        seconds = docker_build(
            client,
            context,
            TENSORFLOW_TAG,
            labels=labels,
            log=cache_dir() / "logs" / "tensorflow-build.log",
            nocache=force,
        )
        steps.append(("docker build", seconds))
        new = current(client, TENSORFLOW_TAG, recipe, **{LABEL_BASE_ID: base.id})
        if new is None:
            raise BaseImageBuildFailed(f"{TENSORFLOW_TAG} lacks its labels after the build")
        drop_replaced(client, old, new)
        return BuiltImage(TENSORFLOW_TAG, new, rebuilt=True, steps=tuple(steps))


def pip_download(
    arguments: Sequence[str], dest: Path, what: str, log_name: str, steps: list[tuple[str, float]]
) -> None:
    """pip download, on the host, binary wheels for the containers' Python and platform into dest."""
    platforms = [item for platform in PLATFORMS for item in ("--platform", platform)]
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--only-binary=:all:",
        "--python-version",
        PYTHON_VERSION,
        "--implementation",
        "cp",
        "--abi",
        f"cp{PYTHON_VERSION.replace('.', '')}",
        *platforms,
        "--dest",
        str(dest),
        *arguments,
    ]
    log = cache_dir() / "logs" / log_name
    steps.append((what, run_logged(command, what, log, DOWNLOAD_TIMEOUT_S, error=BaseImageUnavailable)))


def tensorflow_context(steps: list[tuple[str, float]]) -> Path:
    """The cached build context of the stand-in: wheels/ holding TensorFlow and every dependency."""
    context = cache_dir() / f"tensorflow-{TENSORFLOW_VERSION}-{tensorflow_wheels_recipe()[:16]}"
    complete = context / ".complete"
    if complete.exists():
        say(f"reusing the wheels in {context / 'wheels'}")
        return context
    for stale in cache_dir().glob(f"tensorflow-{TENSORFLOW_VERSION}-*"):
        shutil.rmtree(stale)
    wheels = context / "wheels"
    wheels.mkdir(parents=True)
    pip_download(
        [f"tensorflow=={TENSORFLOW_VERSION}"],
        wheels,
        f"pip download tensorflow=={TENSORFLOW_VERSION} and its dependencies (about 600 MB)",
        "tensorflow-download.log",
        steps,
    )
    (context / ".dockerignore").write_text(".complete\n")
    complete.write_text(json.dumps(sorted(path.name for path in wheels.iterdir()), indent=1))
    return context


def docker_build(
    client: docker.DockerClient, context: Path, tag: str, *, labels: dict[str, str], log: Path, nocache: bool
) -> float:
    """Build with the legacy builder and no network; Step lines on stderr, everything in log."""
    start = time.monotonic()
    say(f"docker build {tag} (about a minute; log: {log})")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        stream = client.api.build(
            path=str(context),
            tag=tag,
            rm=True,
            forcerm=True,
            pull=False,
            nocache=nocache,
            network_mode="none",
            labels=labels,
            decode=True,
            use_config_proxy=False,
        )
        for chunk in stream:
            if "stream" in chunk:
                text = str(chunk["stream"])
                out.write(text)
                out.flush()
                if text.startswith("Step "):
                    say(f"  {text.strip()[:160]}")
            if "error" in chunk:
                out.write(f"ERROR: {chunk['error']}\n")
                out.flush()
                tail = log.read_text(errors="replace")[-3000:]
                raise BaseImageBuildFailed(f"docker build {tag} failed: {chunk['error']}\n{tail}")
            if time.monotonic() - start > BUILD_TIMEOUT_S:
                raise BaseImageBuildFailed(
                    f"docker build {tag} did not finish in {BUILD_TIMEOUT_S}s; see {log}"
                )
    seconds = time.monotonic() - start
    say(f"docker build {tag}: done in {seconds:.1f}s")
    return seconds


# --- wheels for the example jobs -------------------------------------------------------------------


def example_wheelhouse(dest: Path) -> Path:
    """Fill dest with wheels for jobs/requirements.txt that the TensorFlow stand-in does not already hold.

    Resolved with TensorFlow's wheels as constraints, so that what the job image installs agrees with
    what the base has. Downloaded on the host once and cached; dest gets hard links (or copies).
    """
    source = example_wheels()
    dest.mkdir(parents=True, exist_ok=True)
    for wheel in sorted(source.glob("*.whl")):
        target = dest / wheel.name
        if target.exists():
            continue
        try:
            os.link(wheel, target)
        except OSError:
            shutil.copy2(wheel, target)
    return dest


def example_wheels() -> Path:
    requirements = EXAMPLE_REQUIREMENTS.read_text()
    recipe = digest("examples", RECIPE_VERSION, requirements, tensorflow_wheels_recipe(), PLATFORMS)
    cache = cache_dir()
    wheelhouse = cache / f"examples-{recipe[:16]}"
    if (wheelhouse / ".complete").exists():
        return wheelhouse
    with build_lock():
        if (wheelhouse / ".complete").exists():
            return wheelhouse
        steps: list[tuple[str, float]] = []
        tensorflow_wheels = tensorflow_context(steps) / "wheels"
        for stale in cache.glob("examples-*"):
            shutil.rmtree(stale)
        with tempfile.TemporaryDirectory(dir=cache) as scratch:
            constraints = Path(scratch) / "constraints.txt"
            constraints.write_text("".join(f"{pin}\n" for pin in wheel_pins(tensorflow_wheels)))
            download = Path(scratch) / "wheels"
            download.mkdir()
            pip_download(
                [
                    "-r",
                    str(EXAMPLE_REQUIREMENTS),
                    "-c",
                    str(constraints),
                    "--find-links",
                    str(tensorflow_wheels),
                ],
                download,
                "pip download the example jobs' requirements",
                "examples-download.log",
                steps,
            )
            have = {path.name for path in tensorflow_wheels.glob("*.whl")}
            for wheel in download.glob("*.whl"):
                if wheel.name in have:
                    wheel.unlink()
            (download / ".complete").write_text(
                json.dumps(sorted(p.name for p in download.glob("*.whl")), indent=1)
            )
            download.rename(wheelhouse)
        return wheelhouse


def wheel_pins(directory: Path) -> list[str]:
    """name==version for every wheel in directory (from the file names, PEP 427)."""
    pins = []
    for wheel in sorted(directory.glob("*.whl")):
        name, version = wheel.name.split("-")[:2]
        pins.append(f"{name}=={version}")
    return pins


# --- the command line ------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.engine.base_images", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--force", action="store_true", help="rebuild both images (downloads stay cached)")
    parser.add_argument(
        "--wheelhouse", type=Path, help="also fill this directory with the example jobs' wheels"
    )
    options = parser.parse_args(argv)
    try:
        for ensure in (ensure_python_base, ensure_tensorflow_base):
            start = time.monotonic()
            built = ensure(force=options.force)
            total = time.monotonic() - start
            print(f"{built.tag}  {built.id}  {'built' if built.rebuilt else 'reused'} in {total:.1f}s")
            for step, seconds in built.steps:
                print(f"    {step}: {seconds:.1f}s")
        if options.wheelhouse:
            start = time.monotonic()
            wheelhouse = example_wheelhouse(options.wheelhouse)
            count = len(list(wheelhouse.glob("*.whl")))
            print(f"{wheelhouse}: {count} wheels in {time.monotonic() - start:.1f}s")
    except (BaseImageUnavailable, BaseImageBuildFailed) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
