"""Collect one run into the store in the layout of ARCHITECTURE.md.

    <job>/<run-id>/job.yaml, run.json, logs/, outputs/, MANIFEST.json

MANIFEST.json (size and sha256 of every other file) is written last: its presence marks the run
complete. Nothing from the job may escape the run directory: paths are checked as keys, files are
opened without following links, and symlinks that point outside the outputs directory are refused
and listed in run.json rather than copied.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import UnsafePathError
from runner.store.base import Digest, Store, check_key

MANIFEST_FILE = "MANIFEST.json"
RUN_FILE = "run.json"
JOB_FILE = "job.yaml"


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Refusal:
    path: str
    reason: str


@dataclass
class Collection:
    files: list[FileEntry] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)

    def add(self, path: str, digest: Digest) -> None:
        self.files.append(FileEntry(path=path, size=digest.size, sha256=digest.sha256))


def run_prefix(job: str, run_id: str) -> str:
    return check_key(f"{job}/{run_id}")


def collect_run(
    store: Store,
    *,
    job: str,
    run_id: str,
    manifest_text: str,
    summary: dict[str, Any],
    logs_dir: Path | None,
    outputs_dir: Path | None,
) -> Collection:
    """Upload outputs, logs, job.yaml and run.json, then MANIFEST.json; return what was written."""
    prefix = run_prefix(job, run_id)
    collection = Collection()
    for area, directory in (("outputs", outputs_dir), ("logs", logs_dir)):
        if directory is not None and directory.is_dir():
            _collect_tree(store, prefix, area, directory, collection)
    collection.add(JOB_FILE, store.put_bytes(f"{prefix}/{JOB_FILE}", manifest_text.encode()))
    record = {**summary, "refused": [asdict(item) for item in collection.refused]}
    collection.add(RUN_FILE, store.put_bytes(f"{prefix}/{RUN_FILE}", _json(record)))
    manifest = {"job": job, "run": run_id, "files": [asdict(entry) for entry in collection.files]}
    store.put_bytes(f"{prefix}/{MANIFEST_FILE}", _json(manifest))
    return collection


def read_manifest(store: Store, job: str, run_id: str) -> list[FileEntry] | None:
    """The files of a completely collected run, or None while MANIFEST.json is not there."""
    key = f"{run_prefix(job, run_id)}/{MANIFEST_FILE}"
    if not store.exists(key):
        return None
    data = json.loads(store.get_bytes(key))
    return [FileEntry(**entry) for entry in data["files"]]


def _json(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def _collect_tree(store: Store, prefix: str, area: str, top: Path, collection: Collection) -> None:
    real_top = top.resolve()
    for path in _walk(top):
        relative = f"{area}/{path.relative_to(top).as_posix()}"
        try:
            check_key(relative)
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                target = path.resolve()
                if not target.is_relative_to(real_top):
                    raise UnsafePathError(f"symlink points outside {area}/ (to {target})")
                if not target.is_file():
                    raise UnsafePathError("symlink to something other than a file inside the directory")
                source_path = target
            elif stat.S_ISREG(info.st_mode):
                source_path = path
            else:
                raise UnsafePathError("not a regular file")
            descriptor = os.open(source_path, os.O_RDONLY | os.O_NOFOLLOW)
        except UnsafePathError as refusal:
            collection.refused.append(Refusal(path=relative, reason=refusal.message))
            continue
        except OSError as error:
            collection.refused.append(Refusal(path=relative, reason=f"cannot read: {error.strerror}"))
            continue
        with os.fdopen(descriptor, "rb") as handle:
            collection.add(relative, store.put_stream(f"{prefix}/{relative}", handle))


def _walk(top: Path) -> Iterator[Path]:
    """Every non-directory entry below top, without following directory symlinks."""
    for directory, dirs, files in os.walk(top, followlinks=False):
        base = Path(directory)
        dirs.sort()
        for name in [*sorted(files), *sorted(d for d in dirs if (base / d).is_symlink())]:
            yield base / name
