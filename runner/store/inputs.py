"""Job inputs in object storage: where an input's source lies, a local directory uploaded once under a
content-addressed prefix, and a prefix fetched into a directory with its sizes and checksums verified.

Standard library and the store only: the agent in a job's container fetches with it.

    s3://bucket/a/b     the objects under a/b/ in bucket; read through the store rooted at s3://bucket/a
                        as its key "b" (a store lists keys under a prefix, never its root)
    <store>/inputs/sha256-<digest>/   a local input uploaded by `runner submit` to a cluster; its
                        INDEX (every file's path, size and sha256) is written last: its presence marks
                        the upload complete, and a second submit of the same files uploads nothing
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from runner.config import format_size
from runner.errors import RunnerError, StoreError, UnsafePathError, UserError
from runner.store.base import Digest, Store, StoredObject, check_key, hash_stream

INPUTS_PREFIX = "inputs"
INDEX = ".runner-input.json"  # written last under a content-addressed prefix
REPORT_EVERY = 8 * 1024 * 1024  # bytes between two progress lines

Progress = Callable[[str], None]


class InputError(UserError):
    """An input that cannot be read: a missing path, an empty prefix, an unreachable store."""


@dataclass(frozen=True)
class S3Source:
    """s3://bucket/prefix as a store URL and the key under it whose objects are the input."""

    url: str
    store_url: str
    key: str


def parse_s3(url: str, what: str = "input") -> S3Source:
    """s3://bucket/a/b: the store at s3://bucket/a and key b. A bare bucket is refused: name a prefix."""
    if not url.startswith("s3://"):
        raise InputError(f"{what}: {url!r} is not an s3:// URL")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    prefix = prefix.strip("/")
    if not bucket or not prefix:
        raise InputError(
            f"{what}: {url!r} names no prefix in its bucket",
            hint="name the objects' prefix, e.g. s3://bucket/datasets/cells/",
        )
    try:
        check_key(prefix)
    except UnsafePathError as error:
        hint = "use a prefix such as data/cells"
        raise InputError(f"{what}: {url!r}: {error.message}", hint=hint) from None
    parent, _, key = prefix.rpartition("/")
    store_url = f"s3://{bucket}/{parent}" if parent else f"s3://{bucket}"
    return S3Source(url=url, store_url=store_url, key=key)


def content_key(digest: str) -> str:
    return f"{INPUTS_PREFIX}/sha256-{digest}"


# -- a local directory ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalFile:
    relative: str  # POSIX path under the input's root
    path: Path
    digest: Digest


def local_files(root: Path) -> list[tuple[str, Path]]:
    """The regular files under root (root itself when it is a file), sorted by relative path."""
    if root.is_file():
        return [(root.name, root)]
    found: list[tuple[str, Path]] = []
    for directory, _, names in os.walk(root, followlinks=False):
        for name in names:
            path = Path(directory, name)
            if path.is_file():
                found.append((PurePosixPath(*path.relative_to(root).parts).as_posix(), path))
    return sorted(found)


def hash_local(root: Path) -> list[LocalFile]:
    files: list[LocalFile] = []
    for relative, path in local_files(root):
        with path.open("rb") as source:
            files.append(LocalFile(relative, path, hash_stream(source)))
    return files


def tree_digest(entries: Iterable[tuple[str, int, str]]) -> str:
    """One sha256 over (path, size, sha256) of every file, in path order: the tree's content address."""
    digest = hashlib.sha256()
    for relative, size, sha256 in sorted(entries):
        digest.update(f"{relative}\0{size}\0{sha256}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def index_text(files: Iterable[LocalFile]) -> bytes:
    listing = {f.relative: {"size": f.digest.size, "sha256": f.digest.sha256} for f in files}
    return json.dumps({"files": listing}, sort_keys=True, indent=1).encode()


def upload_tree(store: Store, root: Path, progress: Progress) -> tuple[str, bool]:
    """Upload root's files under their content address in store, unless a complete copy is there.
    Returns the key of the prefix and whether anything was uploaded."""
    files = hash_local(root)
    if not files:
        raise InputError(f"{root} holds no files", hint="point the input at a directory with its data")
    key = content_key(tree_digest((f.relative, f.digest.size, f.digest.sha256) for f in files))
    if store.exists(f"{key}/{INDEX}"):
        progress(f"{root}: already in the store ({store.location(key)}), not uploaded")
        return key, False
    total = sum(f.digest.size for f in files)
    sent = reported = 0
    progress(f"{root}: uploading {len(files)} file(s), {format_size(total)}, to {store.location(key)}")
    for number, item in enumerate(files, 1):
        with item.path.open("rb") as source:
            written = store.put_stream(f"{key}/{item.relative}", source)
        if written != item.digest:
            raise StoreError(f"{item.path} changed while it was uploaded", hint="submit again")
        sent += written.size
        if sent - reported >= REPORT_EVERY or number == len(files):
            progress(f"{root}: {number}/{len(files)} file(s), {format_size(sent)} of {format_size(total)}")
            reported = sent
    store.put_bytes(f"{key}/{INDEX}", index_text(files))
    return key, True


# -- a prefix in the store ---------------------------------------------------------------------


def list_input(store: Store, key: str, what: str) -> list[StoredObject]:
    """The objects of an input (its index left out); InputError when there are none."""
    objects = [item for item in store.list(key) if item.key != f"{key}/{INDEX}"]
    if not objects:
        raise InputError(
            f"{what}: {store.location(key)}/ holds no objects",
            hint="upload the data there first, or point the input at the prefix that holds it",
        )
    return objects


def fetch_prefix(store: Store, key: str, destination: Path, what: str, progress: Progress) -> int:
    """Download every object under key into destination (their paths below key kept), each verified
    against its listed size, the store's own checksum (the S3 store verifies its sha256 metadata when
    there is one) and the prefix's INDEX when it has one. Returns the bytes fetched."""
    objects = list_input(store, key, what)
    expected: dict[str, dict[str, object]] = {}
    if store.exists(f"{key}/{INDEX}"):
        try:
            loaded = json.loads(store.get_bytes(f"{key}/{INDEX}"))
            expected = dict(loaded.get("files", {}))
        except (ValueError, AttributeError):
            raise StoreError(f"{what}: {store.location(key)}/{INDEX} is not an input index") from None
    destination.mkdir(parents=True, exist_ok=True)
    total = sum(item.size for item in objects)
    done = reported = 0
    progress(f"{what}: fetching {len(objects)} file(s), {format_size(total)}, from {store.location(key)}")
    for number, item in enumerate(objects, 1):
        relative = item.key[len(key) + 1 :]
        got = store.download(item.key, destination.joinpath(*relative.split("/")))
        problem = check_fetched(relative, got, item.size, expected.get(relative))
        if problem is not None:
            raise StoreError(f"{what}: {problem}", hint="the data changed while it was read: run again")
        done += got.size
        if done - reported >= REPORT_EVERY or number == len(objects):
            progress(f"{what}: {number}/{len(objects)} file(s), {format_size(done)} of {format_size(total)}")
            reported = done
    return done


def check_fetched(relative: str, got: Digest, listed: int, indexed: dict[str, object] | None) -> str | None:
    """Why a fetched file is not what was listed (or indexed); None when it is."""
    if got.size != listed:
        return f"{relative}: fetched {got.size} bytes, the store listed {listed}"
    if indexed is not None and (indexed.get("size"), indexed.get("sha256")) != (got.size, got.sha256):
        return f"{relative}: its size or sha256 differs from the input's index"
    return None


def open_source(source: str, what: str) -> tuple[Store, str]:
    """The store holding an s3:// input and the key of its objects there."""
    from runner.store import open_store  # the package imports the stores; this module is imported lazily

    parsed = parse_s3(source, what)
    return open_store(parsed.store_url), parsed.key


def probe_s3(source: str, what: str) -> list[StoredObject]:
    """An s3:// input's objects, asked before anything of a run exists: InputError (a user's mistake,
    with a hint) for an empty prefix, a bucket that is not there or a store that does not answer."""
    try:
        store, key = open_source(source, what)
        return list_input(store, key, what)
    except InputError:
        raise
    except RunnerError as error:
        raise InputError(
            f"{what}: {source} cannot be listed: {error.message}",
            hint=error.hint or "check the URL, AWS_ENDPOINT_URL and the credentials",
        ) from None
