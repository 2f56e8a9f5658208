"""Build contexts: which files of a job's context go into its image or its per-run copy.

Patterns follow .dockerignore: one per line, '#' comments, '*' and '?' within a path part, '**'
across parts, a leading '!' re-includes, the last matching pattern wins, and a pattern that matches
a directory excludes everything below it.

What a context may hold is bounded before anything reads a file's contents (``scan_context``): a FIFO,
socket or device that .dockerignore keeps is refused by name (reading one would hang, or never end), and
so is a context whose regular files add up to more than RUNNER_MAX_CONTEXT (apparent sizes: a sparse
file counts for what reading it gives). The per-run copy and the image build's tar stream check again
as they read, so a file that changed since is refused too, never waited on.
"""

from __future__ import annotations

import heapq
import os
import re
import shutil
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from runner.config import NO_LIMIT, format_size, max_context_bytes
from runner.errors import UserError

IGNORE_FILE = ".dockerignore"
_CHUNK = 1 << 20
_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_SPECIAL = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


class ContextError(UserError):
    """The context cannot be used as it is: a special file in it, or more than RUNNER_MAX_CONTEXT."""


@dataclass(frozen=True)
class ContextEntry:
    """One thing a context contributes: a directory, a regular file (its apparent size) or a symlink."""

    name: str  # context-relative POSIX path
    kind: Literal["dir", "file", "symlink"]
    size: int = 0


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern[str]
    include: bool


def _translate(pattern: str) -> re.Pattern[str]:
    out = ""
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**", index):
            index += 2
            if pattern.startswith("/", index):
                index += 1
                out += "(?:.*/)?"
            else:
                out += ".*"
            continue
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[":
            end = pattern.find("]", index + 1)
            if end == -1:
                out += re.escape(char)
            else:
                body = pattern[index + 1 : end].replace("\\", "\\\\")
                out += "[" + ("^" + body[1:] if body.startswith("!") else body) + "]"
                index = end
        else:
            out += re.escape(char)
        index += 1
    return re.compile(out + r"\Z")


class IgnoreRules:
    def __init__(self, lines: Iterable[str]) -> None:
        self._patterns: list[_Pattern] = []
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            include = line.startswith("!")
            cleaned = "/".join(part for part in line.lstrip("!").strip().split("/") if part not in ("", "."))
            if cleaned:
                self._patterns.append(_Pattern(_translate(cleaned), include))

    @property
    def has_exceptions(self) -> bool:
        """Whether some '!' pattern may re-include a path below an excluded directory."""
        return any(pattern.include for pattern in self._patterns)

    @classmethod
    def for_context(cls, context: Path) -> IgnoreRules:
        ignore_file = context / IGNORE_FILE
        return cls(ignore_file.read_text().splitlines() if ignore_file.is_file() else [])

    def excluded(self, relative: str) -> bool:
        """Whether the context-relative POSIX path is left out."""
        parts = relative.split("/")
        prefixes = ["/".join(parts[:end]) for end in range(1, len(parts) + 1)]
        verdict = False
        for pattern in self._patterns:
            if any(pattern.regex.match(prefix) for prefix in prefixes):
                verdict = not pattern.include
        return verdict


def scan_context(context: Path, *, skip: Iterable[Path] = (), limit: int | None = None) -> list[ContextEntry]:
    """What of context goes into a build or a run's copy, in walk order (a directory before its contents).

    Regular files and symbolic links (never followed, not even to directories) that .dockerignore keeps,
    and the directories it keeps. Like Docker, an excluded directory is still searched when some '!'
    pattern could re-include a path below it (``build/`` then ``!build/keep.txt``). Directories in skip
    (the runner's own home, when it lies inside the context) are left out whole.

    Raises ContextError for a FIFO, socket or device that would go in, and once the regular files add
    up to more than limit bytes (RUNNER_MAX_CONTEXT when None): the walk stops there, so a context of
    `/` is refused at once rather than read. Nothing is opened but directories.
    """
    scan = _Scan(context, skip, max_context_bytes() if limit is None else limit)
    scan.walk(context, "")
    return scan.found


class _Scan:
    def __init__(self, context: Path, skip: Iterable[Path], cap: int) -> None:
        self.context = context
        self.rules = IgnoreRules.for_context(context)
        self.never = {path.absolute() for path in skip}
        self.cap = cap
        self.found: list[ContextEntry] = []
        self.total = 0

    def walk(self, directory: Path, prefix: str) -> None:
        with os.scandir(directory) as entries:
            listed = sorted(entries, key=lambda entry: entry.name)
        for entry in listed:
            if (directory / entry.name).absolute() not in self.never:
                self.entry(directory / entry.name, prefix + entry.name, entry.stat(follow_symlinks=False))

    def entry(self, path: Path, relative: str, info: os.stat_result) -> None:
        if stat.S_ISDIR(info.st_mode):
            kept = not self.rules.excluded(relative)
            if kept:
                self.found.append(ContextEntry(relative, "dir"))
            if kept or self.rules.has_exceptions:
                self.walk(path, relative + "/")
        elif self.rules.excluded(relative):
            return
        elif stat.S_ISLNK(info.st_mode):
            self.found.append(ContextEntry(relative, "symlink"))
        elif stat.S_ISREG(info.st_mode):
            self.found.append(ContextEntry(relative, "file", info.st_size))
            self.total += info.st_size
            if self.total > self.cap:
                raise _too_large(self.context, self.found, self.cap)
        else:
            raise _special(self.context, relative, info.st_mode)


def _special(context: Path, relative: str, mode: int) -> ContextError:
    kind = _SPECIAL.get(stat.S_IFMT(mode), "not a regular file")
    return ContextError(
        f"spec.image.context: {context / relative} is {kind}; a build context holds only files, "
        "directories and symlinks",
        hint=f"remove it, or leave it out with a line '{relative}' in {context / IGNORE_FILE}",
    )


def _too_large(context: Path, found: Sequence[ContextEntry], cap: int) -> ContextError:
    files = [entry for entry in found if entry.kind == "file"]
    largest = heapq.nlargest(3, files, key=lambda entry: entry.size)
    named = ", ".join(f"{entry.name} ({format_size(entry.size)})" for entry in largest)
    return ContextError(
        f"spec.image.context: {context} holds more than {format_size(cap)} (RUNNER_MAX_CONTEXT); "
        f"the largest files found: {named}",
        hint=f"leave data out with {context / IGNORE_FILE} and give it to the job as spec.inputs, "
        "or raise RUNNER_MAX_CONTEXT (e.g. 8Gi, or none)",
    )


def context_files(context: Path, *, skip: Iterable[Path] = (), limit: int | None = None) -> list[str]:
    """The context's files that go into a build, as sorted context-relative POSIX paths: regular files
    and symlinks (scan_context, whose refusals it raises)."""
    entries = scan_context(context, skip=skip, limit=limit)
    return sorted(entry.name for entry in entries if entry.kind != "dir")


def copy_context(
    context: Path, destination: Path, *, skip: Iterable[Path] = (), limit: int | None = None
) -> None:
    """Copy context to destination (which must not exist), leaving out what .dockerignore excludes.

    The context is scanned first (scan_context: nothing is created when it is refused); directories in
    skip and the destination itself are never copied. Files are copied with their modes and times,
    symlinks as links; a file that became a FIFO or device since, or grew past the limit, is refused
    without being waited on. On any error the partial destination is removed.
    """
    cap = max_context_bytes() if limit is None else limit
    entries = scan_context(context, skip=[*skip, destination], limit=cap)
    copy_scanned(context, entries, destination, limit=cap)


def copy_scanned(
    context: Path, entries: Sequence[ContextEntry], destination: Path, *, limit: int = NO_LIMIT
) -> None:
    """Copy what scan_context found in context to destination (which must not exist)."""
    destination.mkdir(parents=True)
    try:
        budget = limit
        for entry in entries:
            source, target = context / entry.name, destination / entry.name
            if entry.kind == "dir":
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if entry.kind == "symlink":
                target.symlink_to(source.readlink())
            else:
                budget -= _copy_file(context, entry.name, target, budget)
        for entry in reversed(entries):  # modes last: a read-only directory was still written into
            if entry.kind == "dir":
                shutil.copystat(context / entry.name, destination / entry.name)
        shutil.copystat(context, destination)
    except BaseException:
        shutil.rmtree(destination, ignore_errors=True)
        raise


def _copy_file(context: Path, name: str, target: Path, budget: int) -> int:
    """Copy one regular file, opened without following links or waiting; the bytes copied."""
    descriptor = os.open(context / name, _OPEN_FILE)
    with os.fdopen(descriptor, "rb", buffering=0) as source:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise _special(context, name, info.st_mode)
        os.set_blocking(descriptor, True)
        copied = 0
        with target.open("xb") as sink:
            while chunk := source.read(_CHUNK):
                copied += len(chunk)
                if copied > budget:
                    raise ContextError(
                        f"spec.image.context: {context / name} grew while being copied, past "
                        "RUNNER_MAX_CONTEXT",
                        hint="copy the context once nothing writes to it",
                    )
                sink.write(chunk)
        target.chmod(stat.S_IMODE(info.st_mode))
        os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))
    return copied
