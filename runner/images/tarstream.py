"""The build context as a tar stream, generated member by member from a recipe and the runner's wheel."""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from runner.config import format_size, max_context_bytes
from runner.errors import RunnerError
from runner.images.context import ContextError
from runner.images.recipe import BuildEntry, BuildRecipe

_CHUNK = 1 << 20
_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE


class StreamAborted(Exception):
    """Raised inside the context stream; the real error waits in ContextStream.error."""


class ContextStream:
    """The build context as a tar, generated member by member: no copy of the context is made.

    Times are 0, owners root, modes as the recipe gives them; symbolic links travel as links.
    An error reading the context is kept in ``error`` (the HTTP layer would otherwise report it as
    a connection failure) and re-raised by the caller. The recipe's files were checked when it was made
    (runner.images.context.scan_context); a file that has since become a FIFO or device is refused
    without being waited on, and the context's files may not add up to more than limit bytes
    (RUNNER_MAX_CONTEXT when None) however they grew since.

    extra adds the runner's files from outside the context (the host-resolved wheels): each a
    directory name and the files to put in it, under their own names.
    """

    def __init__(
        self,
        recipe: BuildRecipe,
        context_dir: Path,
        wheel: Path,
        *,
        limit: int | None = None,
        extra: Sequence[tuple[str, Sequence[Path]]] = (),
    ):
        self.recipe = recipe
        self.context_dir = context_dir
        self.wheel = wheel
        self.extra = extra
        self.error: RunnerError | None = None
        self.sent = 0
        self.limit = max_context_bytes() if limit is None else limit
        self.context_bytes = 0

    def __iter__(self) -> Iterator[bytes]:
        try:
            for entry in self.recipe.entries(self.context_dir):
                yield from self._entry(entry)
            yield from self._file(self.recipe.runner_wheel, 0o644, self.wheel, follow=True)
            for directory, files in self.extra:
                yield self._header(directory, tarfile.DIRTYPE, 0o755)
                for path in files:
                    yield from self._file(f"{directory}/{path.name}", 0o644, path, follow=True)
            yield from self._finish()
        except ContextError as error:
            self.error = error
            raise StreamAborted(str(error)) from None
        except OSError as error:
            name = error.filename or "the context"
            self.error = RunnerError(
                f"cannot read {name} while sending the build context: {error.strerror or error}",
                hint="try again once nothing writes to the context, or leave the file out with .dockerignore",
            )
            raise StreamAborted(str(self.error)) from None

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
            if not follow:  # a context file, not the runner's wheel
                self._count(path, size)
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

    def _count(self, path: Path, size: int) -> None:
        self.context_bytes += size
        if self.context_bytes > self.limit:
            raise ContextError(
                f"spec.image.context: {self.context_dir} holds more than {format_size(self.limit)} "
                f"(RUNNER_MAX_CONTEXT) by the time {path} was sent: it grew while the image was built",
                hint="build once nothing writes to the context, or raise RUNNER_MAX_CONTEXT",
            )

    def _padding(self, size: int) -> bytes:
        pad = b"\0" * (-size % _BLOCK)
        self.sent += len(pad)
        return pad

    def _finish(self) -> Iterator[bytes]:
        end = 2 * _BLOCK
        end += -(self.sent + end) % _RECORD
        yield b"\0" * end
