"""Collect one run into the store in the layout of ARCHITECTURE.md.

    <job>/<run-id>/job.yaml, run.json, logs/, outputs/, MANIFEST.json

MANIFEST.json (size and sha256 of every other file) is written last: its presence marks the run
complete. Nothing from the job may escape the run directory: paths are checked as keys, directories
and files are opened relative to their parent's descriptor without following links, and symlinks
that point outside their directory (or at anything but a regular file) are refused and listed in
run.json rather than copied. FIFOs, sockets and devices are refused without being opened for reading
(and were one swapped in, it is opened non-blocking and refused), so nothing can hang collection.

Hard links are held to the same rule as symlinks: a file with more links than the tree holds names for
(a hard link to /etc/passwd, or to any file outside the outputs) is refused; files linked only to each
other inside the tree are collected. Such files are collected after the rest of their tree is walked,
once every name of theirs in it has been counted.

Outputs are capped (RUNNER_MAX_OUTPUTS, 50 GiB unless set): files are taken in the walk's order while
they fit, by their apparent size (a sparse file counts for what reading it gives, as the store will hold
it), and each that does not fit is refused and listed with the reason; later, smaller files may still fit.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runner.config import format_size, max_outputs_bytes
from runner.errors import NotFoundError, StoreError, UnsafePathError
from runner.store.base import Digest, Store, check_key
from runner.workers import MAX_WORKERS, count_of, worker_area

MANIFEST_FILE = "MANIFEST.json"
RUN_FILE = "run.json"
JOB_FILE = "job.yaml"
REFUSED_FILE = "refused.json"  # a worker's files refused at collection (the chief lists its own in run.json)
WORKERS = "workers"

_SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_DEPTH = 64  # directories nested deeper than this below outputs/ or logs/ are refused

_OPEN_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


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
    """The key prefix of one run: <job>/<run-id>, each a single path part."""
    for what, value in (("job name", job), ("run id", run_id)):
        if "/" in value:
            raise UnsafePathError(f"refusing {what} {value!r}: it must not contain '/'")
    return check_key(f"{job}/{run_id}")


def worker_prefix(job: str, run_id: str, worker: int = 0) -> str:
    """The key prefix of one worker's files: the run's own for worker 0 (the chief, and every
    single-worker run), <job>/<run-id>/workers/<i> for the others."""
    prefix = run_prefix(job, run_id)
    return f"{prefix}/{worker_area(worker)}" if worker else prefix


def collect_run(
    store: Store,
    *,
    job: str,
    run_id: str,
    manifest_text: str,
    summary: dict[str, Any],
    logs_dir: Path | None,
    outputs_dir: Path | None,
    max_outputs: int | None = None,
    workers: int = 1,
) -> Collection:
    """Upload outputs, logs, job.yaml and run.json, then MANIFEST.json; return what was written.

    A multi-worker run's chief (worker 0) says how many workers the run has in MANIFEST.json, so that
    read_manifest finds every worker's area (collect_worker).

    At most max_outputs bytes of outputs (RUNNER_MAX_OUTPUTS when None) are collected; logs are not capped.
    """
    prefix = run_prefix(job, run_id)
    collection = _collect_trees(store, prefix, logs_dir, outputs_dir, max_outputs)
    collection.add(JOB_FILE, store.put_bytes(f"{prefix}/{JOB_FILE}", manifest_text.encode()))
    record = {**summary, "refused": [asdict(item) for item in collection.refused]}
    collection.add(RUN_FILE, store.put_bytes(f"{prefix}/{RUN_FILE}", json_bytes(record)))
    header: dict[str, Any] = {"job": job, "run": run_id} | ({"workers": workers} if workers > 1 else {})
    _write_manifest(store, prefix, collection, header)
    return collection


def collect_worker(
    store: Store,
    *,
    job: str,
    run_id: str,
    index: int,
    logs_dir: Path | None,
    outputs_dir: Path | None,
    max_outputs: int | None = None,
) -> Collection:
    """Upload the outputs and logs of a multi-worker run's worker other than the chief (index 1 on) under
    <job>/<run-id>/workers/<index>/, then that area's own MANIFEST.json, which marks it complete.

    Each worker's area is complete on its own, so workers that end in any order never write one file
    twice; the chief's collect_run writes the run's run.json, job.yaml and MANIFEST.json.
    """
    if index < 1:
        raise ValueError(f"worker {index}: the chief (worker 0) is collected by collect_run")
    prefix = worker_prefix(job, run_id, index)
    collection = _collect_trees(store, prefix, logs_dir, outputs_dir, max_outputs)
    if collection.refused:
        refused = {"refused": [asdict(item) for item in collection.refused]}
        collection.add(REFUSED_FILE, store.put_bytes(f"{prefix}/{REFUSED_FILE}", json_bytes(refused)))
    _write_manifest(store, prefix, collection, {"job": job, "run": run_id, "worker": index})
    return collection


def _collect_trees(
    store: Store, prefix: str, logs_dir: Path | None, outputs_dir: Path | None, max_outputs: int | None
) -> Collection:
    collection = Collection()
    cap = max_outputs_bytes() if max_outputs is None else max_outputs
    for area, directory in (("outputs", outputs_dir), ("logs", logs_dir)):
        if directory is not None:
            _Tree(
                store, prefix, area, directory, collection, cap=cap if area == "outputs" else None
            ).collect()
    return collection


def _write_manifest(store: Store, prefix: str, collection: Collection, header: dict[str, Any]) -> None:
    """MANIFEST.json of a run or worker area, written last: the logs of the attempts before this one,
    collected by earlier pods, stay listed."""
    written = {entry.path for entry in collection.files}
    earlier = [entry for entry in _earlier_logs(store, prefix) if entry.path not in written]
    files = [asdict(entry) for entry in [*earlier, *collection.files]]
    store.put_bytes(f"{prefix}/{MANIFEST_FILE}", json_bytes({**header, "files": files}))


def _earlier_logs(store: Store, prefix: str) -> list[FileEntry]:
    try:
        previous = (_read_manifest_document(store, f"{prefix}/{MANIFEST_FILE}") or ([], 1))[0]
    except StoreError:
        return []  # a damaged earlier MANIFEST is replaced, not trusted
    return [entry for entry in previous if entry.path.startswith("logs/")]


def next_attempt(store: Store, job: str, run_id: str, worker: int = 0) -> int:
    """One more than the highest attempt whose log is in the store (pods have no attempt number)."""
    numbers = [0]
    for item in store.list(f"{worker_prefix(job, run_id, worker)}/logs"):
        name = item.key.rsplit("/", 1)[-1]
        if name.startswith("attempt-") and name.endswith(".log") and name[8:-4].isdigit():
            numbers.append(int(name[8:-4]))
    return max(numbers) + 1


def read_manifest(store: Store, job: str, run_id: str) -> list[FileEntry] | None:
    """The files of a completely collected run, or None while MANIFEST.json is not there; a multi-worker
    run's files include those of every worker whose area is complete, as workers/<index>/PATH."""
    prefix = run_prefix(job, run_id)
    manifest = _read_manifest_document(store, f"{prefix}/{MANIFEST_FILE}")
    if manifest is None:
        return None
    files, workers = manifest
    for index in range(1, workers):
        area = worker_area(index)
        found = _read_manifest_document(store, f"{prefix}/{area}/{MANIFEST_FILE}")
        files += [
            FileEntry(f"{area}/{entry.path}", entry.size, entry.sha256) for entry in (found or ([], 0))[0]
        ]
    return files


def _read_manifest_document(store: Store, key: str) -> tuple[list[FileEntry], int] | None:
    """A MANIFEST.json's files and the run's worker count (1 unless the chief's says more)."""
    try:
        data = store.get_bytes(key)
    except NotFoundError:
        return None
    try:
        document = json.loads(data)
        files = [_entry(item) for item in document["files"]]
        raw = document.get("workers", 1)
        workers = count_of(raw)
        if workers is None or workers > MAX_WORKERS:
            raise ValueError(f"bad workers {raw!r}")
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise StoreError(f"{store.location(key)} is damaged: {error}") from None
    return files, workers


def _entry(item: Any) -> FileEntry:
    path, size, sha256 = item["path"], item["size"], item["sha256"]
    if not isinstance(path, str) or not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise ValueError(f"bad entry {item!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError(f"bad entry {item!r}")
    return FileEntry(path=check_key(path), size=size, sha256=sha256)  # paths are data: check them


def json_bytes(data: Any) -> bytes:
    """A JSON document as the store keeps them: indented, keys sorted, a final newline."""
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def _kind(mode: int) -> str:
    kinds = {
        stat.S_IFDIR: "a directory",
        stat.S_IFIFO: "a FIFO",
        stat.S_IFSOCK: "a socket",
        stat.S_IFCHR: "a character device",
        stat.S_IFBLK: "a block device",
        stat.S_IFLNK: "a symlink",
    }
    return kinds.get(stat.S_IFMT(mode), "not a regular file")


def _inside(path: str, directory: str) -> bool:
    return Path(path).is_relative_to(directory)


def _open_regular(path: str, expected: os.stat_result, *, dir_fd: int | None = None) -> int:
    """A blocking descriptor on the regular file that path named when it was stat'ed as expected."""
    try:
        descriptor = os.open(path, _OPEN_FILE, dir_fd=dir_fd)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise UnsafePathError("replaced by a symlink while being collected: not followed") from None
        raise
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafePathError(f"not a regular file ({_kind(info.st_mode)})")
        if not os.path.samestat(info, expected):
            raise UnsafePathError("replaced while being collected")
        os.set_blocking(descriptor, True)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def _opened_path(descriptor: int) -> str | None:
    """The real path of an open descriptor, where /proc tells it."""
    try:
        return str(Path(f"/proc/self/fd/{descriptor}").readlink())
    except OSError:
        return None


@dataclass(frozen=True)
class _Linked:
    """A file of the tree with more than one hard link, collected once its links are counted."""

    parts: list[str]
    info: os.stat_result  # the file's, through a symlink for a link
    symlink: bool


class _Tree:
    """One of outputs/ or logs/, walked through directory descriptors."""

    def __init__(
        self, store: Store, prefix: str, area: str, top: Path, collection: Collection, *, cap: int | None
    ) -> None:
        self.store = store
        self.cap = cap  # bytes this tree may hold in the store; None: no cap
        self.left = cap
        self.prefix = prefix
        self.area = area
        self.top = top
        self.collection = collection
        self.real_top = ""
        self.linked: list[_Linked] = []
        self.names: dict[tuple[int, int], int] = {}  # (device, inode) -> its names in the tree

    def refuse(self, relative: str, reason: str) -> None:
        self.collection.refused.append(Refusal(path=relative, reason=reason))

    def collect(self) -> None:
        try:
            descriptor = os.open(self.top, _OPEN_DIRECTORY)
        except FileNotFoundError:
            return  # the job never made it: failed, cancelled or wrote nothing
        except OSError as error:
            if error.errno in (errno.ELOOP, errno.ENOTDIR) and self.top.is_symlink():
                self.refuse(self.area, "a symlink, not a directory: not followed")
            else:
                self.refuse(self.area, f"cannot read: {error.strerror}")
            return
        try:
            self.real_top = os.path.realpath(self.top)
            self.walk(descriptor, [], 0)
            for item in self.linked:
                self.collect_linked(descriptor, item)
        finally:
            os.close(descriptor)

    def collect_linked(self, top: int, item: _Linked) -> None:
        """A multiply linked file: collected when all its links are names in this tree, else refused."""
        relative = "/".join([self.area, *item.parts])
        inside = self.names.get((item.info.st_dev, item.info.st_ino), 0)
        try:
            if inside < item.info.st_nlink:
                raise UnsafePathError(
                    f"a hard link to a file outside {self.area}/ ({item.info.st_nlink} links, "
                    f"{inside} inside): not collected"
                )
            descriptor = self.open_link(item.parts) if item.symlink else self.reopen(top, item)
            if not os.path.samestat(os.fstat(descriptor), item.info):
                os.close(descriptor)
                raise UnsafePathError("replaced while being collected")
        except UnsafePathError as refusal:
            self.refuse(relative, refusal.message)
            return
        except OSError as error:
            self.refuse(relative, f"cannot read: {error.strerror}")
            return
        self.upload(relative, descriptor)

    def reopen(self, top: int, item: _Linked) -> int:
        """The regular file at item's path, opened again through directory descriptors from the top."""
        directory = os.dup(top)
        try:
            for part in item.parts[:-1]:
                try:
                    inner = os.open(part, _OPEN_DIRECTORY, dir_fd=directory)
                except OSError as error:
                    if error.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise UnsafePathError("replaced while being collected: not followed") from None
                    raise
                os.close(directory)
                directory = inner
            return _open_regular(item.parts[-1], item.info, dir_fd=directory)
        finally:
            os.close(directory)

    def upload(self, relative: str, descriptor: int) -> None:
        with os.fdopen(descriptor, "rb") as handle:
            if self.cap is not None and self.left is not None:
                size = os.fstat(descriptor).st_size  # apparent: what reading gives, sparse or not
                if size > self.left:
                    self.refuse(relative, self._beyond_cap(size))
                    return
            digest = self.store.put_stream(f"{self.prefix}/{relative}", handle)
            self.collection.add(relative, digest)
            if self.left is not None:
                self.left -= digest.size

    def _beyond_cap(self, size: int) -> str:
        assert self.cap is not None and self.left is not None
        left = f"; {format_size(max(self.left, 0))} of it left" if self.left < self.cap else ""
        return (
            f"{format_size(size)}, beyond the {format_size(self.cap)} cap on a run's {self.area} "
            f"(RUNNER_MAX_OUTPUTS){left}: not collected"
        )

    def walk(self, directory: int, parts: list[str], depth: int) -> None:
        try:
            names = sorted(os.listdir(directory))
        except OSError as error:
            self.refuse("/".join([self.area, *parts]), f"cannot read: {error.strerror}")
            return
        for name in names:
            self.entry(directory, [*parts, name], depth)

    def entry(self, directory: int, parts: list[str], depth: int) -> None:
        relative = "/".join([self.area, *parts])
        name = parts[-1]
        try:
            check_key(relative)
            info = os.stat(name, dir_fd=directory, follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                self.subdirectory(directory, parts, depth, info)
                return
            if stat.S_ISLNK(info.st_mode):
                descriptor = self.open_link(parts)
            elif stat.S_ISREG(info.st_mode):
                descriptor = _open_regular(name, info, dir_fd=directory)
            else:
                raise UnsafePathError(f"not a regular file ({_kind(info.st_mode)})")
        except UnsafePathError as refusal:
            self.refuse(relative, refusal.message)
            return
        except OSError as error:
            self.refuse(relative, f"cannot read: {error.strerror}")
            return
        opened = os.fstat(descriptor)
        if opened.st_nlink > 1:  # decided once the whole tree is walked
            os.close(descriptor)
            if not stat.S_ISLNK(info.st_mode):
                key = (opened.st_dev, opened.st_ino)
                self.names[key] = self.names.get(key, 0) + 1
            self.linked.append(_Linked(parts, opened, symlink=stat.S_ISLNK(info.st_mode)))
            return
        self.upload(relative, descriptor)

    def subdirectory(self, directory: int, parts: list[str], depth: int, info: os.stat_result) -> None:
        if depth >= MAX_DEPTH:
            raise UnsafePathError(f"nested more than {MAX_DEPTH} directories deep")
        try:
            descriptor = os.open(parts[-1], _OPEN_DIRECTORY, dir_fd=directory)
        except OSError as error:
            if error.errno in (errno.ELOOP, errno.ENOTDIR):
                raise UnsafePathError("replaced while being collected: not followed") from None
            raise
        try:
            if not os.path.samestat(info, os.fstat(descriptor)):
                raise UnsafePathError("replaced while being collected")
            self.walk(descriptor, parts, depth + 1)
        finally:
            os.close(descriptor)

    def open_link(self, parts: list[str]) -> int:
        """The file a symlink leads to, when that is a regular file inside the tree."""
        link = Path(self.real_top).joinpath(*parts)  # the directories on the way are not links
        target = os.path.realpath(link)
        if not _inside(target, self.real_top):
            raise UnsafePathError(f"symlink points outside {self.area}/ (to {target})")
        try:
            info = Path(target).stat()
        except OSError as error:
            raise UnsafePathError(f"symlink to nothing: {error.strerror}") from None
        if not stat.S_ISREG(info.st_mode):
            raise UnsafePathError(f"symlink to {_kind(info.st_mode)}, not followed")
        descriptor = _open_regular(target, info)
        opened = _opened_path(descriptor)
        if opened is not None and not _inside(opened, self.real_top):
            os.close(descriptor)
            raise UnsafePathError(f"symlink points outside {self.area}/ (to {opened})")
        return descriptor
