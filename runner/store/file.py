"""file:// artifact store: a directory tree, written through temporary files and renames.

A writer killed mid-write leaves its temporary file (`.tmp-<hex>.part`) behind. Temporary files are
never objects (list skips them), so retention would never see them: stale_temp_files finds those older
than an age and remove_stale_temp_files deletes them (housekeeping does after each collection).
"""

from __future__ import annotations

import builtins
import contextlib
import io
import os
import re
import secrets
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from runner.errors import NotFoundError, StoreError, UnsafePathError
from runner.store.base import Digest, StoredObject, check_key, hash_stream

_TEMP_PREFIX = ".tmp-"
_TEMP_NAME = re.compile(r"\.tmp-[0-9a-f]{32}\.part")
# What opening a key that names no object raises: nothing there, a directory, or a file as a parent.
_MISSING = (FileNotFoundError, IsADirectoryError, NotADirectoryError)
_CREATE_TRIES = 3
# A temporary file untouched this long belongs to a writer that died: an upload in progress writes on.
STALE_TEMP_SECONDS = 24 * 60 * 60.0


def is_temp_name(name: str) -> bool:
    """Whether name is one of the temporary files write_atomically renames into place."""
    return _TEMP_NAME.fullmatch(name) is not None


def write_atomically(path: Path, source: BinaryIO) -> Digest:
    """Stream source into a temporary file beside path, then rename it over path.

    Readers see the previous file or the whole new one, never part of it; the temporary file is
    removed whatever goes wrong. The file is private to its owner (0600): a run's manifest, logs and
    outputs are nobody else's to read.
    """
    temp = path.with_name(f"{_TEMP_PREFIX}{secrets.token_hex(16)}.part")
    descriptor = _create(path, temp)
    try:
        with os.fdopen(descriptor, "wb") as sink:
            digest = hash_stream(source, sink)
            sink.flush()
            os.fsync(sink.fileno())
        try:
            temp.replace(path)
        except OSError as error:
            raise StoreError(f"cannot write {path}: {error.strerror}") from error
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)  # the rename survives a crash before whatever is written next
    return digest


def _create(path: Path, temp: Path) -> int:
    """Make path's directory and open temp in it for writing.

    A store's delete removes directories it empties, so one made here can vanish before the file is
    created in it (another job's retention tidying up): then make it again, a few times.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for tries_left in reversed(range(_CREATE_TRIES)):
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            return os.open(temp, flags, 0o600)
        except FileNotFoundError as error:
            if not tries_left:
                raise StoreError(f"cannot write {path}: {error.strerror}") from error
        except OSError as error:
            raise StoreError(f"cannot write {path}: {error.strerror}") from error
    raise AssertionError("unreachable")  # pragma: no cover


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root.absolute()
        self.url = self.root.as_uri()

    def _path(self, key: str) -> Path:
        """Where key lives; refused when it, or a symlink on its way, leads outside the store."""
        path = self.root / check_key(key)
        # os.path.realpath, unlike Path.resolve on 3.11, does not raise on symlink loops
        real_root = Path(os.path.realpath(self.root))
        if not Path(os.path.realpath(path)).is_relative_to(real_root):
            raise UnsafePathError(f"refusing {key!r}: it resolves outside the store at {self.root}")
        return path

    def put_stream(self, key: str, source: BinaryIO) -> Digest:
        return write_atomically(self._path(key), source)

    def put_bytes(self, key: str, data: bytes) -> Digest:
        return self.put_stream(key, io.BytesIO(data))

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except _MISSING:
            raise NotFoundError(f"{self.location(key)} does not exist") from None
        except OSError as error:
            raise StoreError(f"cannot read {self.location(key)}: {error.strerror}") from error

    def download(self, key: str, destination: Path) -> Digest:
        path = self._path(key)
        try:
            source = path.open("rb")
        except _MISSING:
            raise NotFoundError(f"{self.location(key)} does not exist") from None
        except OSError as error:
            raise StoreError(f"cannot read {self.location(key)}: {error.strerror}") from error
        with source:
            return write_atomically(destination, source)

    def list(self, prefix: str) -> list[StoredObject]:
        top = self._path(prefix)
        found: list[StoredObject] = []
        for directory, _dirs, files in os.walk(top):
            for name in files:
                if is_temp_name(name):
                    continue
                path = Path(directory) / name
                try:
                    info = path.lstat()
                except FileNotFoundError:
                    continue
                if stat.S_ISREG(info.st_mode):  # objects are files: not symlinks, FIFOs or sockets
                    key = path.relative_to(self.root).as_posix()
                    found.append(StoredObject(key=key, size=info.st_size, modified=info.st_mtime))
        return sorted(found, key=lambda item: item.key)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def check_writable(self) -> None:
        """StoreError unless an object can be written: the root made if missing, a byte written (as a
        temporary file, so a probe cut short is cleaned as stale) and removed."""
        probe = self.root / f"{_TEMP_PREFIX}{secrets.token_hex(16)}.part"
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            descriptor = os.open(
                probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
            )
            try:
                os.write(descriptor, b"\0")
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
                probe.unlink(missing_ok=True)
        except OSError as error:
            raise StoreError(f"cannot write to {self.url}: {error.strerror or error}") from None

    def stale_temp_files(self, prefix: str, older_than: float) -> builtins.list[Path]:
        """The temporary files under prefix last written before older_than (seconds since the epoch)."""
        found: builtins.list[Path] = []
        for directory, _dirs, files in os.walk(self._path(prefix)):
            for name in files:
                if not is_temp_name(name):
                    continue
                path = Path(directory) / name
                try:
                    info = path.lstat()
                except FileNotFoundError:
                    continue
                if stat.S_ISREG(info.st_mode) and info.st_mtime < older_than:
                    found.append(path)
        return sorted(found)

    def remove_stale_temp_files(self, prefix: str, older_than: float) -> builtins.list[str]:
        """Delete stale_temp_files(prefix, older_than) and the directories that leaves empty; their paths
        relative to the root."""
        removed = []
        for path in self.stale_temp_files(prefix, older_than):
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as error:
                raise StoreError(f"cannot delete {path.as_uri()}: {error.strerror}") from error
            removed.append(path.relative_to(self.root).as_posix())
            self._remove_empty(path.parent)
        return removed

    def delete(self, keys: Sequence[str]) -> None:
        """Unlink each key's file, then remove the directories that left empty, up to the root.

        Every key is checked as for a write first, so nothing outside the root is touched; a key
        that names a directory is refused (objects are files).
        """
        paths = [self._path(key) for key in keys]
        for key, path in zip(keys, paths, strict=True):
            try:
                path.unlink()
            except (FileNotFoundError, NotADirectoryError):
                continue  # already gone: deleting is idempotent
            except IsADirectoryError:
                raise StoreError(
                    f"cannot delete {self.location(key)}: it is a directory, not an object"
                ) from None
            except OSError as error:
                raise StoreError(f"cannot delete {self.location(key)}: {error.strerror}") from error
        deepest_first = sorted({path.parent for path in paths}, key=lambda item: -len(item.parts))
        for directory in deepest_first:
            _fsync_directory(self._remove_empty(directory))  # the unlinks survive a crash

    def _remove_empty(self, directory: Path) -> Path:
        """Remove directory and its parents below the root while they are empty; the first one kept."""
        while directory != self.root and directory.is_relative_to(self.root):
            try:
                directory.rmdir()
            except FileNotFoundError:
                pass  # removed already (by this call or another): its parent may be empty now
            except OSError:
                return directory  # not empty: neither are its parents
            directory = directory.parent
        return directory

    def location(self, key: str) -> str:
        return (self.root / key).as_uri()
