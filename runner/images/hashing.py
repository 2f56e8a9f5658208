"""Image tags from content: the same inputs give the same tag, on any machine, from any directory.

The hash covers everything that decides the image: the rendered Dockerfile, the base image
reference, the requirements (the file's text or the list), the apt packages, the runner version, and
every file of the context that .dockerignore keeps, by its context-relative path, its kind (file or
symbolic link), its executable bit and its content (a link's target, never what it points to).
It ignores what Docker ignores or what the build normalises: modification times, owners, the other
mode bits, the order in which the file system lists a directory, and where the context lies.
Each field is framed by a name and a length, so that no two different inputs hash the same bytes.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from pathlib import Path

from runner.errors import RunnerError, UserError
from runner.images.recipe import BuildRecipe
from runner.spec.names import check_dns_label
from runner.store.base import hash_stream

SCHEME = b"runner-image/v1"
TAG_LENGTH = 20  # hex characters of sha256: 80 bits
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_REGISTRY = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*")
_NAMESPACE = re.compile(r"[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*")


class _Hasher:
    def __init__(self) -> None:
        self._digest = hashlib.sha256(SCHEME)

    def field(self, name: str, value: bytes) -> None:
        label = name.encode()
        self._digest.update(len(label).to_bytes(2, "big") + label)
        self._digest.update(len(value).to_bytes(8, "big") + value)

    def text(self, name: str, value: str) -> None:
        self.field(name, value.encode("utf-8"))

    def path(self, name: str, value: str) -> None:
        """A file name: the bytes the file system holds (names that are not UTF-8 included)."""
        self.field(name, os.fsencode(value))

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def _file_digest(path: Path) -> str:
    """sha256 of a regular file's content, streamed; the file must still be regular when opened."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    descriptor = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(errno.EINVAL, "changed into something other than a file")
        os.set_blocking(descriptor, True)
        with os.fdopen(descriptor, "rb", closefd=False) as source:
            return hash_stream(source).sha256
    finally:
        os.close(descriptor)


def _hash_context_file(hasher: _Hasher, context_dir: Path, name: str) -> None:
    path = context_dir / name
    try:
        info = path.lstat()
        hasher.path("path", name)
        if stat.S_ISLNK(info.st_mode):
            hasher.text("kind", "symlink")
            hasher.field("target", os.fsencode(path.readlink()))
        elif stat.S_ISREG(info.st_mode):
            hasher.text("kind", "file")
            hasher.text("executable", "1" if info.st_mode & stat.S_IXUSR else "0")
            hasher.text("sha256", _file_digest(path))
        else:
            raise OSError(errno.EINVAL, "is no longer a file")
    except FileNotFoundError:
        raise RunnerError(
            f"the context changed while it was read: {name} is gone from {context_dir}",
            hint="try again once nothing writes to the context",
        ) from None
    except PermissionError:
        raise UserError(
            f"cannot read {name} in the context {context_dir}: permission denied",
            hint="make it readable, or leave it out with .dockerignore",
        ) from None
    except OSError as error:
        raise RunnerError(
            f"cannot read {name} in the context {context_dir}: {error.strerror or error}",
            hint="try again once nothing writes to the context, or leave it out with .dockerignore",
        ) from None


def content_digest(recipe: BuildRecipe, context_dir: Path, runner_version: str) -> str:
    """The full sha256 (hex) of everything that goes into the image. Reads the context's files."""
    hasher = _Hasher()
    hasher.text("runner", runner_version)
    hasher.text("dockerfile", recipe.dockerfile)
    hasher.text("base", recipe.base)
    hasher.text("apt", "\n".join(recipe.apt))
    if isinstance(recipe.requirements, str):
        hasher.text("requirements-file", recipe.requirements)
    elif recipe.requirements is not None:
        hasher.text("requirements-list", "\n".join(recipe.requirements))
    if recipe.requirements_text is not None:
        hasher.text("requirements", recipe.requirements_text)
    hasher.text("wheelhouse", "1" if recipe.wheelhouse else "0")
    hasher.text("files", str(len(recipe.files)))
    for name in sorted(recipe.files):
        _hash_context_file(hasher, context_dir, name)
    return hasher.hexdigest()


def image_tag(recipe: BuildRecipe, context_dir: Path, runner_version: str) -> str:
    """The image's tag: the first 20 hex characters of its content digest.

    runner_version must name the runner build exactly: the release for an installed wheel, and
    something that changes with the code for a development build (the wheel's own sha256, say).
    """
    return content_digest(recipe, context_dir, runner_version)[:TAG_LENGTH]


def image_reference(registry: str, job: str, tag: str, *, namespace: str = "runner") -> str:
    """``<registry>/<namespace>/<job>:<tag>``, e.g. 127.0.0.1:5000/runner/mnist:0123456789abcdef0123.

    An empty registry gives a local name (runner/mnist:...), for an engine that does not push.
    """
    registry = registry.strip().rstrip("/")
    if "://" in registry:
        raise UserError(
            f"registry {registry!r}: expected a host and optional port and path, without a scheme",
            hint="write it like 127.0.0.1:5000 or registry.example.com/team",
        )
    if registry and not _REGISTRY.fullmatch(registry):
        raise UserError(
            f"registry {registry!r} is not a registry address",
            hint="write it like 127.0.0.1:5000 or registry.example.com/team (paths in lower case)",
        )
    if not _NAMESPACE.fullmatch(namespace):
        raise ValueError(f"namespace {namespace!r}: lower-case path components expected")
    try:
        check_dns_label(job, "job name")
    except ValueError as error:
        raise UserError(str(error)) from None
    if not _TAG.fullmatch(tag):
        raise ValueError(f"tag {tag!r}: letters, digits, '_', '.' and '-', at most 128 characters")
    repository = f"{namespace}/{job}"
    return f"{registry}/{repository}:{tag}" if registry else f"{repository}:{tag}"
