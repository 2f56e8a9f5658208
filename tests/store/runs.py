"""Helpers that put runs into a store the way collection does, for the latest and retention tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from runner.errors import StoreError
from runner.store import Digest, Store, StoredObject
from runner.store.collect import collect_run


def put_run(
    store: Store,
    tmp_path: Path,
    job: str,
    run_id: str,
    *,
    finished: float | None,
    state: str = "succeeded",
    complete: bool = True,
) -> None:
    """A run with one output and one log; without MANIFEST.json when not complete (still being written)."""
    outputs = tmp_path / "made" / run_id / "outputs"
    logs = tmp_path / "made" / run_id / "logs"
    outputs.mkdir(parents=True)
    logs.mkdir(parents=True)
    (outputs / "model.bin").write_bytes(run_id.encode())
    (logs / "attempt-1.log").write_text("trained\n")
    summary: dict[str, object] = {"id": run_id, "job": job, "state": state}
    if finished is not None:
        summary["finished"] = finished
    if complete:
        collect_run(
            store,
            job=job,
            run_id=run_id,
            manifest_text="kind: Job\n",
            summary=summary,
            logs_dir=logs,
            outputs_dir=outputs,
        )
    else:
        store.put_bytes(f"{job}/{run_id}/outputs/model.bin", run_id.encode())
        store.put_bytes(f"{job}/{run_id}/logs/attempt-1.log", b"training...\n")


def run_ids(store: Store, job: str) -> set[str]:
    """The run directories of job in the store (complete or not)."""
    return {item.key.split("/")[1] for item in store.list(job) if item.key.count("/") >= 2}


@dataclass
class DeleteRecorder:
    """A store that passes everything on and records each delete call; fail_after makes later ones fail."""

    inner: Store
    deletes: list[list[str]] = field(default_factory=list)
    fail_after: int | None = None
    url: str = field(init=False)

    def __post_init__(self) -> None:
        self.url = self.inner.url

    def delete(self, keys: Sequence[str]) -> None:
        if self.fail_after is not None and len(self.deletes) >= self.fail_after:
            raise StoreError("the store went away")
        self.deletes.append(list(keys))
        self.inner.delete(keys)

    def put_stream(self, key: str, source: BinaryIO) -> Digest:
        return self.inner.put_stream(key, source)

    def put_bytes(self, key: str, data: bytes) -> Digest:
        return self.inner.put_bytes(key, data)

    def get_bytes(self, key: str) -> bytes:
        return self.inner.get_bytes(key)

    def download(self, key: str, destination: Path) -> Digest:
        return self.inner.download(key, destination)

    def list(self, prefix: str) -> list[StoredObject]:
        return self.inner.list(prefix)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def location(self, key: str) -> str:
        return self.inner.location(key)
