"""A local run's inputs: paths on this machine as they are, s3:// prefixes fetched into a cache under
RUNNER_HOME/inputs, PersistentVolumeClaims refused (only a cluster mounts them).

check_inputs runs in the backend's check (before anything of the run exists); fetch_inputs in its prepare,
giving the plan whose inputs are all directories here: the process backend points RUNNER_INPUT_<NAME>
at them, the docker backend mounts them read-only at the inputs' paths.

The cache is keyed by what the store lists under the prefix (every object's path, size and time), so a
prefix whose objects are unchanged is fetched once; a changed object is a new entry.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from runner.backends.base import RunPlan
from runner.errors import SubmitError
from runner.spec.model import input_kind
from runner.store.base import StoredObject
from runner.store.inputs import fetch_prefix, open_source, probe_s3

CACHE = "inputs"
COMPLETE = ".complete"  # written into a cache entry once every file is fetched and verified


def check_inputs(plan: RunPlan, backend: str) -> None:
    """Refuse inputs this machine cannot give the job: a missing path, a pvc:// claim, a URL other than
    s3://, an s3:// prefix that is empty or cannot be listed."""
    for item in plan.manifest.spec.inputs:
        source = plan.inputs[item.name]
        what = f"input {item.name!r}"
        kind = input_kind(source)
        if kind == "pvc":
            raise SubmitError(
                f"{what}: {source} is a PersistentVolumeClaim, which only a cluster can mount; "
                f"the {backend} backend runs on this machine",
                hint=f"submit with --backend kubernetes, or pass a copy here: --input {item.name}=PATH",
            )
        if kind == "s3":
            probe_s3(source, what)
            continue
        if kind == "url":
            raise SubmitError(
                f"{what}: the {backend} backend reads local paths and s3:// prefixes, not {source!r}",
                hint=f"download it first and pass it: --input {item.name}=PATH",
            )
        path = Path(source)
        if not path.is_absolute():
            raise SubmitError(f"{what}: the {backend} backend reads local paths only")
        if not path.exists():
            raise SubmitError(
                f"{what}: {path} does not exist",
                hint="create it, or point the input elsewhere with --input NAME=PATH",
            )


def cache_entry(source: str, objects: Sequence[StoredObject]) -> str:
    """The cache entry of an s3:// input: a digest of its URL and what the store lists under it."""
    digest = hashlib.sha256(source.rstrip("/").encode())
    for item in sorted(objects, key=lambda o: o.key):
        digest.update(f"\n{item.key}\0{item.size}\0{item.modified}".encode())
    return digest.hexdigest()[:32]


def fetch_inputs(plan: RunPlan, home: Path, progress: Callable[[str], None]) -> RunPlan:
    """plan with every s3:// input fetched (or found in the cache) and replaced by its directory."""
    inputs = dict(plan.inputs)
    for item in plan.manifest.spec.inputs:
        source = inputs[item.name]
        if input_kind(source) == "s3":
            inputs[item.name] = str(fetch_cached(source, f"input {item.name!r}", home / CACHE, progress))
    return replace(plan, inputs=inputs) if inputs != plan.inputs else plan


def fetch_cached(source: str, what: str, cache: Path, progress: Callable[[str], None]) -> Path:
    objects = probe_s3(source, what)
    entry = cache / cache_entry(source, objects)
    if (entry / COMPLETE).exists():
        progress(f"{what}: {source} unchanged, using the copy in {entry}")
        return entry / "data"
    cache.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=".fetch-", dir=cache))
    try:
        store, key = open_source(source, what)
        fetch_prefix(store, key, temporary / "data", what, progress)
        readable(temporary)
        (temporary / COMPLETE).write_bytes(b"")
        try:
            temporary.rename(entry)
        except OSError:  # fetched at the same time by another submit, or a broken entry: keep one
            if not (entry / COMPLETE).exists():
                shutil.rmtree(entry, ignore_errors=True)
                temporary.rename(entry)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return entry / "data"


def readable(root: Path) -> None:
    """Files and directories readable by anyone, as an input on this machine usually is: a container's
    user (UID 1000) reads the copy that the submitting user fetched (files are written as 0600)."""
    root.chmod(0o755)
    for directory, names, files in os.walk(root):
        for name in names:
            Path(directory, name).chmod(0o755)
        for name in files:
            Path(directory, name).chmod(0o644)
