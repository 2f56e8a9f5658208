"""A cluster run's inputs: checked before anything is built, local ones uploaded into the store.

check_inputs (the backend's check): a local path must exist and hold files, an s3:// prefix must list
objects from here; pvc:// claims are the cluster's to mount. upload_inputs (its prepare, once the
prerequisites answered): every local input goes into the store under inputs/sha256-<digest of its files>
(nothing sent when a complete copy is there) and the plan names that s3:// prefix instead, which the
agent in the pod fetches. uploaded_url names the prefix without uploading (runner render --kubernetes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from runner.backends.base import RunPlan
from runner.errors import SubmitError
from runner.spec.model import input_kind
from runner.store import open_store
from runner.store.inputs import content_key, hash_local, probe_s3, tree_digest, upload_tree


def check_inputs(plan: RunPlan) -> None:
    for item in plan.manifest.spec.inputs:
        source = plan.inputs[item.name]
        what = f"input {item.name!r}"
        kind = input_kind(source)
        if kind == "s3":
            probe_s3(source, what)
        elif kind == "local":
            path = Path(source)
            if not path.exists():
                raise SubmitError(
                    f"{what}: {path} does not exist",
                    hint="create it, or point the input elsewhere with --input NAME=PATH",
                )


def _store_url(store_url: str, key: str) -> str:
    return f"{store_url.rstrip('/')}/{key}"


def uploaded_url(path: Path, store_url: str) -> str:
    """Where upload_inputs puts a local input: its content address in the store (hashes its files)."""
    files = hash_local(path)
    return _store_url(
        store_url, content_key(tree_digest((f.relative, f.digest.size, f.digest.sha256) for f in files))
    )


def planned_inputs(plan: RunPlan, store_url: str) -> dict[str, str]:
    """plan's inputs with local paths named by their content address in the store (nothing uploaded)."""
    inputs = dict(plan.inputs)
    for name, source in plan.inputs.items():
        if input_kind(source) == "local" and Path(source).exists():
            inputs[name] = uploaded_url(Path(source), store_url)
    return inputs


def upload_inputs(plan: RunPlan, store_url: str, progress: Callable[[str], None]) -> RunPlan:
    """plan with every local input uploaded into the store and named by its s3:// prefix there."""
    inputs = dict(plan.inputs)
    store = None
    for item in plan.manifest.spec.inputs:
        source = inputs[item.name]
        if input_kind(source) != "local":
            continue
        store = store or open_store(store_url)
        key, _ = upload_tree(store, Path(source), _said(progress, f"input {item.name!r}"))
        inputs[item.name] = _store_url(store_url, key)
    return replace(plan, inputs=inputs) if inputs != plan.inputs else plan


def _said(progress: Callable[[str], None], what: str) -> Callable[[str], None]:
    def say(line: str) -> None:
        progress(f"{what}: {line}")

    return say
