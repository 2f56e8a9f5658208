"""file:// artifact store: a directory tree, written through temporary files and renames."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from runner.errors import NotFoundError, StoreError, UnsafePathError
from runner.store.base import Digest, StoredObject, check_key, hash_stream

_TEMP_PREFIX = ".tmp-"


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root.absolute()
        self.url = self.root.as_uri()

    def _path(self, key: str) -> Path:
        path = self.root / check_key(key)
        real_root = self.root.resolve()
        if not path.resolve().is_relative_to(real_root):
            raise UnsafePathError(f"refusing {key!r}: it resolves outside the store at {self.root}")
        return path

    def put_stream(self, key: str, source: BinaryIO) -> Digest:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temp_name = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=path.parent)
        except OSError as error:
            raise StoreError(f"cannot write {key} under {self.root}: {error.strerror}") from error
        try:
            with os.fdopen(handle, "wb") as sink:
                digest = hash_stream(source, sink)
                sink.flush()
                os.fsync(sink.fileno())
            Path(temp_name).replace(path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        return digest

    def put_bytes(self, key: str, data: bytes) -> Digest:
        return self.put_stream(key, io.BytesIO(data))

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise NotFoundError(f"{self.location(key)} does not exist") from None

    def download(self, key: str, destination: Path) -> Digest:
        try:
            source = self._path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError):
            raise NotFoundError(f"{self.location(key)} does not exist") from None
        with source:
            return FileStore(destination.parent).put_stream(destination.name, source)

    def list(self, prefix: str) -> list[StoredObject]:
        top = self._path(prefix)
        found: list[StoredObject] = []
        for directory, _dirs, files in os.walk(top):
            for name in files:
                if name.startswith(_TEMP_PREFIX):
                    continue
                path = Path(directory) / name
                key = path.relative_to(self.root).as_posix()
                found.append(StoredObject(key=key, size=path.lstat().st_size))
        return sorted(found, key=lambda item: item.key)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def location(self, key: str) -> str:
        return (self.root / key).as_uri()
