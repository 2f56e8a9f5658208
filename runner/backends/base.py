"""The Backend protocol: where runs execute. Every backend does its own I/O behind it.

It holds everything the service asks of a backend (start, stop, status, logs, adoption), so nothing
outside runner.backends asks which backend a run is on: runner.backends.get_backend maps a record's
backend name to its backend, and the backend does the rest. Both families (runner.backends.local and
runner.backends.kubernetes) share this module and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from runner.clock import Clock
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


@dataclass(frozen=True)
class LogChunk:
    """Bytes of one attempt's log, in the order the attempt wrote them; in a multi-worker run, of one
    worker's (0, the chief, in every other run)."""

    attempt: int
    data: bytes
    worker: int = 0


class Backend(Protocol):
    name: str

    def check(self, plan: RunPlan, settings: Settings) -> None:
        """Raise SubmitError when the plan cannot run on this backend: before anything is created, the
        run's record included."""
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

    def refresh_many(
        self, runs: Sequence[RunRecord], records: RunRecords, settings: Settings
    ) -> dict[str, RunRecord]:
        """Bring many runs of this backend up to date at once: each fresh record by run id, as refresh would
        read it (a terminal run may be left out). A local run costs no request, so local backends refresh
        one by one; the cluster backend reads all of them in a few LISTs."""
        ...

    def adopt(self, records: RunRecords, namespace: str | None, settings: Settings) -> list[str]:
        """Record the runs this backend finds elsewhere (the cluster's runner Jobs in namespace, submitted
        from another machine or by a schedule) that records does not know yet; their run ids, with those
        of the known runs it brought up to date on the way (the cluster backend refreshes the namespace's
        live runs from the same listing). Each is left as refresh would leave it, so a list does not read
        it again. A local backend knows every run it has, and adopts none."""
        ...

    def logs(
        self,
        record: RunRecord,
        *,
        follow: bool,
        attempt: int | None,
        current: Callable[[], RunRecord],
        clock: Clock,
    ) -> Iterator[LogChunk]:
        """The run's log, attempt by attempt (one attempt's when attempt is given). With follow, what is
        written next too, until the run has ended and all of it is read: current() reads the run's record
        afresh, clock paces the waits."""
        ...
