"""The Backend protocol: where runs execute. Every backend does its own I/O behind it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from runner.config import Settings
from runner.records import RunRecord, RunRecords

if TYPE_CHECKING:  # the manifest model (pydantic) stays out of the supervisor's start-up
    from runner.spec import JobManifest


@dataclass(frozen=True)
class RunPlan:
    """Everything a backend needs to start one run; made by the service, pure data."""

    run_id: str
    manifest: JobManifest
    manifest_text: str  # the resolved manifest, YAML, as stored with the run
    context_dir: Path
    inputs: dict[str, str] = field(default_factory=dict)  # input name -> resolved source
    labels: dict[str, str] = field(default_factory=dict)
    image: str | None = None  # the job image, once a container backend has built it


class Backend(Protocol):
    name: str

    def check(self, plan: RunPlan) -> None:
        """Raise SubmitError when the plan cannot run on this backend (before anything is created)."""
        ...

    def prepare(self, plan: RunPlan, settings: Settings, progress: Callable[[str], None]) -> RunPlan:
        """Work before launching, with progress for the user (the docker backend builds the image)."""
        ...

    def launch(self, plan: RunPlan, records: RunRecords, settings: Settings) -> RunRecord:
        """Record the run and start it; returns once it is under way, without waiting for it."""
        ...

    def cancel(self, record: RunRecord, records: RunRecords, settings: Settings) -> None:
        """Ask the run to stop; it is collected as cancelled."""
        ...

    def refresh(self, record: RunRecord, records: RunRecords, settings: Settings) -> RunRecord:
        """Bring the record up to date with reality (e.g. a run whose supervisor died is lost)."""
        ...
