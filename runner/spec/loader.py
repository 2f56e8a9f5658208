"""Read a manifest file into a JobManifest, reporting every problem with file:line:column.

YAML is composed into nodes (which carry their positions) and turned into plain data by hand
(runner.spec.yamlread), so that each value's and key's position is known when pydantic later names a
field path (runner.spec.diagnostics). Duplicate keys, several documents, alias bombs and non-text
input are refused before validation.
"""

from __future__ import annotations

import os
import select
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from runner.errors import ManifestError
from runner.spec.diagnostics import describe
from runner.spec.model import JobManifest
from runner.spec.overrides import Override, PathKey, apply_overrides, override_of
from runner.spec.positions import FatalProblem, Position, SourceMap, offset_position
from runner.spec.yamlread import read_yaml

MAX_MANIFEST_BYTES = 1024 * 1024
PIPE_WAIT_SECONDS = 2.0  # how long a FIFO or device given as the manifest may take to say something
MAX_PROBLEMS = 200  # reported one per line; past this, a count


@dataclass(frozen=True)
class LoadedManifest:
    manifest: JobManifest
    path: Path
    text: str

    @property
    def base_dir(self) -> Path:
        """Relative paths in the manifest (context, inputs) are relative to its directory."""
        return self.path.parent

    @property
    def context_dir(self) -> Path:
        """spec.image.context resolved against the manifest's directory: the job's build context."""
        return (self.base_dir / self.manifest.spec.image.context).resolve()


def load_manifest(path: Path, overrides: Sequence[Override] = ()) -> LoadedManifest:
    """Read and validate the manifest at path, with overrides from the command line applied first;
    ManifestError lists every problem."""
    name = str(path)
    try:
        if path.is_dir():
            raise ManifestError([f"{name}: is a directory; expected a manifest file such as {name}/job.yaml"])
        raw = _read_bounded(path, name)
    except FileNotFoundError:
        raise ManifestError(
            [f"{name}: no such file"], hint="check the path; manifests are YAML files such as job.yaml"
        ) from None
    except PermissionError:
        raise ManifestError([f"{name}: permission denied"]) from None
    except IsADirectoryError:
        raise ManifestError([f"{name}: is a directory"]) from None
    except OSError as error:
        raise ManifestError([f"{name}: cannot read the file: {error.strerror or error}"]) from None
    except ValueError as error:  # a path with a NUL byte in it
        raise ManifestError([f"{name}: not a usable path: {error}"]) from None
    if len(raw) > MAX_MANIFEST_BYTES:
        try:
            stat_size = path.stat().st_size
        except OSError:
            stat_size = 0
        size = f"{stat_size / 2**20:.1f} MiB" if stat_size > MAX_MANIFEST_BYTES else "more than 1 MiB"
        raise ManifestError([f"{name}: the file is {size}; a manifest is at most 1 MiB"])
    manifest, text = parse_manifest(raw, name, overrides)
    return LoadedManifest(manifest=manifest, path=path.absolute(), text=text)


def _read_bounded(path: Path, name: str) -> bytes:
    """At most one byte more than a manifest may hold, never waiting on a pipe nobody writes to.

    The file is opened non-blocking (opening a FIFO for reading otherwise waits for a writer). A regular
    file is then read as usual; a pipe, FIFO or device is read only once it has something to give within
    PIPE_WAIT_SECONDS (`runner validate <(envsubst < job.yaml)` works; a FIFO nothing writes to, or a
    terminal nobody types in, is refused). Sockets cannot be opened and are refused as what they are.
    """
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(descriptor, "rb", buffering=0) as file:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            _await_data(descriptor, name, "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a device")
        os.set_blocking(descriptor, True)
        chunks: list[bytes] = []
        left = MAX_MANIFEST_BYTES + 1  # bounds devices and pipes without a size too
        while left > 0:
            chunk = file.read(left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)


def _await_data(descriptor: int, name: str, kind: str) -> None:
    poller = select.poll()
    poller.register(descriptor, select.POLLIN | select.POLLPRI)
    if not poller.poll(PIPE_WAIT_SECONDS * 1000):  # a FIFO no writer ever opened reports nothing
        raise ManifestError(
            [f"{name}: is {kind} with nothing to read after {PIPE_WAIT_SECONDS:g}s; a manifest is a file"],
            hint="point runner at the manifest file itself",
        )


def parse_manifest(
    raw: bytes | str, name: str = "<manifest>", overrides: Sequence[Override] = ()
) -> tuple[JobManifest, str]:
    """Parse manifest text; returns the validated manifest and the decoded text.

    Raises ManifestError listing every problem found, one ``name:line:column: message`` per line,
    sorted by position; a problem with an override is said against its flag, first.
    """
    try:
        text = _decode(raw)
        data, source, problems, broken = read_yaml(text)
    except FatalProblem as problem:
        raise ManifestError([_format(name, problem.position, problem.message)]) from None
    made: dict[PathKey, Override] = {}
    if overrides:
        data, made = apply_overrides(data, overrides)
        for path in made:
            _known(source, path, _at(data, path))
    try:
        manifest = JobManifest.model_validate(data)
    except ValidationError as error:
        problems = problems + describe(error, source, broken)
    flagged = [(found, message) for path, _, message in problems if (found := override_of(path, made))]
    if flagged:
        problems = [problem for problem in problems if override_of(problem[0], made) is None]
        said = [f"{found.flag}: {message}" for found, message in flagged]
        raise ManifestError(said + [_format(name, position, message) for _, position, message in problems])
    if problems:
        problems.sort(key=lambda problem: (problem[1].line, problem[1].column))
        if len(problems) > MAX_PROBLEMS:
            rest = len(problems) - MAX_PROBLEMS
            more = ((), problems[MAX_PROBLEMS][1], f"... and {rest} more problem{'s' if rest > 1 else ''}")
            problems = [*problems[:MAX_PROBLEMS], more]
        raise ManifestError([_format(name, position, message) for _, position, message in problems])
    return manifest, text


FLAG_POSITION = Position(0, 0)  # an override's value stands in no file: its problems name the flag


def _at(data: Any, path: PathKey) -> Any:
    for key in path:
        try:
            data = data[key]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _known(source: SourceMap, path: PathKey, value: Any) -> None:
    """Make an override's path, and everything in its value, known to the source map, so a problem
    there is placed at that path (and said against the flag)."""
    source.values[path] = source.keys[path] = FLAG_POSITION
    if isinstance(value, dict):
        source.collections.add(path)
        for key, item in value.items():
            _known(source, (*path, str(key)), item)
    elif isinstance(value, list):
        source.collections.add(path)
        for index, item in enumerate(value):
            _known(source, (*path, index), item)
    else:
        source.texts[path] = str(value)


def _decode(raw: bytes | str) -> str:
    if isinstance(raw, str):
        text = raw
    else:
        if len(raw) > MAX_MANIFEST_BYTES:
            raise FatalProblem(
                Position(1, 1), f"the file is {len(raw) / 2**20:.1f} MiB; a manifest is at most 1 MiB"
            )
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise FatalProblem(Position(1, 1), "the file is UTF-16 text; save the manifest as UTF-8")
        if b"\x00" in raw:  # binary data, whatever else it holds
            before = raw[: raw.index(b"\x00")].decode("utf-8", "replace")
            raise FatalProblem(
                offset_position(before, len(before)), "not a text file (it contains NUL bytes)"
            )
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            line = raw[: error.start].count(b"\n") + 1
            column = len(raw[: error.start].rsplit(b"\n", 1)[-1].decode("utf-8", "replace")) + 1
            raise FatalProblem(
                Position(line, column),
                f"not a UTF-8 text file (byte 0x{raw[error.start]:02x} at offset {error.start}); "
                "save the manifest as UTF-8",
            ) from None
    if len(text) > MAX_MANIFEST_BYTES:
        raise FatalProblem(Position(1, 1), "the text is more than 1 MiB; a manifest is at most 1 MiB")
    if "\x00" in text:
        raise FatalProblem(
            offset_position(text, text.index("\x00")), "not a text file (it contains NUL bytes)"
        )
    return text


def _format(name: str, position: Position, message: str) -> str:
    message = message.replace("\r", "\\r").replace("\n", "\\n")
    return f"{name}:{position.line}:{position.column}: {message}"
