"""The runner's use cases over a backend, the run records and the artifact store.

A run's backend is reached by the name its record carries (runner.backends.get_backend), and asked
through the Backend protocol alone: nothing here knows which backends there are or what they do.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from runner.backends import BACKENDS, Backend, LogChunk, auto_reason, choose_backend, get_backend
from runner.clock import SYSTEM_CLOCK, Clock
from runner.config import Settings
from runner.errors import BackendError, NotFoundError, RunnerError, StoreError, UserError
from runner.records import RunRecord, RunRecords, RunState
from runner.service import building, cleanup
from runner.service.outcomes import connection_problem, unreachable
from runner.service.selectors import Requirement, matches
from runner.service.workers import check_worker
from runner.store import Store, check_key, open_store, runjson
from runner.store.collect import RUN_FILE, FileEntry, read_manifest, run_prefix
from runner.timestamps import seconds

if TYPE_CHECKING:  # the manifest's modules (pydantic) load when a manifest is read, not before
    from runner.spec import LoadedManifest
    from runner.spec.overrides import Override

CANCEL_WAIT_POLL = 0.1


@runtime_checkable
class CollectingBackend(Protocol):
    """A backend whose runs this machine collects into the store (the local ones): `runner collect`."""

    def collect(self, record: RunRecord, records: RunRecords, settings: Settings) -> RunRecord: ...


class RunService:
    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        warn: Callable[[str], None] = lambda message: None,
        context: str | None = None,
    ) -> None:
        """warn: how a command says what it could not do and went on without (an unreachable cluster);
        context: the kubeconfig context new cluster runs and listings use (--context; None: the current
        one). A run already launched is always asked in the context it was launched in."""
        self.settings = settings
        self.clock = clock or SYSTEM_CLOCK
        self.warn = warn
        self.context = context
        self._records: RunRecords | None = None

    def backend(self, name: str, context: str | None = None) -> Backend:
        """The backend called name, in context (else this service's): a backend that talks to a cluster
        has a kubeconfig context, the others have none and are given none."""
        found = get_backend(name)
        chosen = context or self.context
        if chosen is not None and hasattr(found, "context"):
            setattr(found, "context", chosen)  # noqa: B010 (not every Backend has one)
        return found

    def backend_of(self, record: RunRecord) -> Backend:
        """The backend of a run, in the context it was launched in."""
        context = record.launch.get("context")
        return self.backend(record.backend, context if isinstance(context, str) else None)

    @property
    def records(self) -> RunRecords:
        if self._records is None:
            self._records = RunRecords(self.settings.database)
        return self._records

    @property
    def builds(self) -> building.Builds:
        return building.Builds(self.records, self.settings, self.clock)

    def submit(
        self,
        path: Path,
        backend_name: str | None = None,
        inputs: tuple[str, ...] = (),
        *,
        progress: Callable[[str], None] = lambda message: None,
        changes: Sequence[Override] = (),
        ready: tuple[str, Backend] | None = None,
        detach: bool = False,
    ) -> RunRecord:
        """Validate (with the command line's changes applied), check the job can run where it goes,
        prepare it (build its image) and launch it; with detach, leave the build and the launch to a
        builder process and return the building run. ready: the backend ready_backend got ready (its
        caller releases it); else this gets it ready, and releases it, itself."""
        own = ready is None
        ready = ready or self.ready_backend(backend_name)
        try:
            from runner.service.plan import parse_overrides
            from runner.spec import load_manifest

            loaded = load_manifest(path, changes)
            return self.submit_manifest(
                loaded,
                backend_name,
                overrides=parse_overrides(inputs),
                progress=progress,
                ready=ready,
                detach=detach,
            )
        finally:
            if own:
                self.release(ready)

    def ready_backend(self, backend_name: str | None, *, prestart: bool = True) -> tuple[str, Backend]:
        """The backend a submit goes to, by name, got ready while the manifest is still to be read: with
        prestart, a local one starts its supervisor's interpreter (SupervisedBackend.prestart), which
        saves a trivial `runner submit` a sixth of its time. release lets what the submit did not use
        go."""
        chosen = choose_backend(backend_name or self.settings.backend)
        backend = self.backend(chosen)
        start = getattr(backend, "prestart", None) if prestart else None
        if start is not None:
            start(self.settings)
        return chosen, backend

    def release(self, ready: tuple[str, Backend]) -> None:
        release = getattr(ready[1], "release_prestart", None)
        if release is not None:
            release()  # nothing to do when launch used it

    def submit_manifest(
        self,
        loaded: LoadedManifest,
        backend_name: str | None = None,
        *,
        overrides: dict[str, str] | None = None,
        extra_labels: Mapping[str, str] | None = None,
        progress: Callable[[str], None] = lambda message: None,
        ready: tuple[str, Backend] | None = None,
        detach: bool = False,
    ) -> RunRecord:
        """Submit an already loaded manifest (a schedule's stored snapshot, say), with extra run labels.
        ready: the backend already chosen for it, by name. The run is recorded, building, once checked."""
        from runner.service.plan import plan_run

        plan = plan_run(loaded, overrides or {}, extra_labels=extra_labels)
        wanted = backend_name or self.settings.backend
        chosen, backend = ready if ready is not None else (choose_backend(wanted), None)
        if wanted == "auto":
            progress(f"backend: {chosen} ({auto_reason(chosen)})")
        backend = backend or self.backend(chosen)
        backend.check(plan, self.settings)
        if detach:
            return self.builds.detach(plan, chosen, self.context)
        record = self.builds.begin(plan, chosen)
        return self.builds.build_and_launch(record, plan, backend, progress)

    def refresh(self, record: RunRecord) -> RunRecord:
        if record.state.collected:
            return record
        if record.state is RunState.BUILDING:
            return self.builds.refresh(record)
        return self.backend_of(record).refresh(record, self.records, self.settings)

    def collect(self, reference: str) -> RunRecord:
        """Collect a run whose collection failed or was cut short (uncollected, or collecting with its
        collector gone) now, in this process; a run already collected is returned as it is."""
        record = self.records.resolve(reference)
        backend = self.backend_of(record)
        if not isinstance(backend, CollectingBackend):
            raise UserError(
                f"run {record.id} runs on the {record.backend} backend: its pods collect it themselves"
            )
        return backend.collect(record, self.records, self.settings)

    def get(self, reference: str) -> RunRecord:
        """A run brought up to date; as last recorded (with a warning) when its backend cannot be reached."""
        record = self.records.resolve(reference)
        try:
            return self.refresh(record)
        except Exception as error:
            if not _degradable(error):
                raise
            self.warn(unreachable(record.backend, error))
            return record

    def list_runs(
        self,
        job: str | None = None,
        limit: int | None = None,
        *,
        cluster_namespace: str | None = None,
        cluster: bool = False,
        states: Collection[RunState] = (),
        selector: Sequence[Requirement] = (),
    ) -> list[RunRecord]:
        """Runs, newest first. With cluster=True every backend first adopts the runs it finds elsewhere
        (the cluster's runner Jobs in cluster_namespace): the cluster's labels are the truth, the local
        records a cache. states: only runs in one of them (as they are now, after a refresh); selector:
        only runs whose labels match (runner.service.selectors)."""
        adopted: set[str] = set()  # recorded or brought up to date just now, as a refresh would leave them
        if cluster:
            for name in BACKENDS:
                try:
                    adopted.update(self.backend(name).adopt(self.records, cluster_namespace, self.settings))
                except Exception as error:
                    if not _degradable(error):
                        raise
                    self.warn(unreachable(name, error))
        if not (states or selector):
            return self.refresh_all(self.records.list(job=job, limit=limit), adopted)
        # a run recorded as live may have ended since: asked for by its recorded state or a live one
        recorded = None if not states else {*states, *(state for state in RunState if not state.final)}
        listed = [
            record
            for record in self.records.list(job=job, states=recorded)
            if matches(selector, record.labels)
        ]
        if not states:
            return self.refresh_all(listed[:limit], adopted)
        return [record for record in self.refresh_all(listed, adopted) if record.state in states][:limit]

    def refresh_all(self, listed: list[RunRecord], fresh_ids: Collection[str] = ()) -> list[RunRecord]:
        """Each run brought up to date, in the same order. The live runs of each backend are refreshed
        together (refresh_many): the cluster's in a few LISTs for all of them, not two requests per run (at
        10,000 runs that is the difference between a second and minutes); local runs one by one, as they
        cost no request. Runs named in fresh_ids were read from their backend just now, and are not
        read again."""
        live: dict[tuple[str, str | None], list[RunRecord]] = {}
        fresh: dict[str, RunRecord] = {record.id: record for record in listed if record.id in fresh_ids}
        for record in listed:
            if record.id in fresh:
                continue
            if not record.state.collected and record.state is not RunState.BUILDING:
                context = record.launch.get("context")
                live.setdefault((record.backend, context if isinstance(context, str) else None), []).append(
                    record
                )
        for (name, context), group in live.items():
            try:
                fresh.update(self.backend(name, context).refresh_many(group, self.records, self.settings))
            except Exception as error:  # one unreachable cluster must not hide the other runs
                if not _degradable(error):
                    raise
                self.warn(unreachable(name, error))
                fresh.update((record.id, record) for record in group)
        return [fresh.get(record.id) or self.refresh(record) for record in listed]

    def cancel(self, reference: str, *, wait: bool = True, timeout: float | None = None) -> RunRecord:
        return self.cancel_run(self.get(reference), wait=wait, timeout=timeout)

    def cancel_run(self, record: RunRecord, *, wait: bool = True, timeout: float | None = None) -> RunRecord:
        """Cancel a run just read (get, refresh): it is not read again before the backend is asked."""
        if record.state.terminal:
            return record
        try:
            if record.state is RunState.BUILDING:
                record = self.builds.cancel(record, wait=wait)
                if record.state.terminal or not wait:
                    return record
            self.backend_of(record).cancel(record, self.records, self.settings)
        except Exception as error:
            if not _degradable(error) or record.launch.get("created") is not False:
                raise
            # a launch that says it created nothing (its submit failed part way): nothing to stop
            return self.records.update(
                record.id,
                state=RunState.CANCELLED,
                finished=self.clock.time(),
                message="cancelled: nothing of it was created (its submit failed)",
            )
        limit = self.settings.grace_seconds + 60 if timeout is None else timeout
        give_up = self.clock.monotonic() + limit
        while wait and not record.state.final and self.clock.monotonic() < give_up:
            self.clock.sleep(CANCEL_WAIT_POLL)
            record = self.refresh(self.records.get(record.id))
        return record

    def logs(
        self, reference: str, *, follow: bool = False, attempt: int | None = None, worker: int | None = None
    ) -> Iterator[LogChunk]:
        return self.logs_of(self.get(reference), follow=follow, attempt=attempt, worker=worker)

    def logs_of(
        self,
        record: RunRecord,
        *,
        follow: bool = False,
        attempt: int | None = None,
        worker: int | None = None,
        on_record: Callable[[RunRecord], None] = lambda record: None,
    ) -> Iterator[LogChunk]:
        """The logs of a run just read (get, refresh), without reading it again first: every worker's, or
        only worker's (NotFoundError for one the run does not have). on_record sees each fresh read of the
        run a followed stream makes (a retry's backoff, say, is in its message)."""
        check_worker(record, worker)
        if record.state is RunState.BUILDING or building.ended_building(record):
            return building.logs(
                record,
                follow=follow,
                current=lambda: self.refresh(self.records.get(record.id)),
                clock=self.clock,
                launched=lambda run: self.logs_of(
                    run, follow=follow, attempt=attempt, worker=worker, on_record=on_record
                ),
            )

        def current() -> RunRecord:
            fresh = self.refresh(self.records.get(record.id))
            on_record(fresh)
            return fresh

        chunks = self.backend_of(record).logs(
            record, follow=follow, attempt=attempt, current=current, clock=self.clock
        )
        return chunks if worker is None else (chunk for chunk in chunks if chunk.worker == worker)

    def artifacts_run(self, reference: str) -> tuple[RunRecord, str | None]:
        """The run whose artifacts a reference means, and a note saying which when that is not plain: a
        job name means the job's latest succeeded complete run (the store's `latest`), not its newest."""
        if self.records.find(reference) is not None:
            return self.get(reference), None
        newest = self.records.list(job=reference, limit=1)
        if not newest:
            return self.get(reference), None  # a prefix of a run id, or not found
        from runner.store.latest import read_latest

        latest = read_latest(open_store(newest[0].store_url), reference)
        if latest is None or self.records.find(latest) is None:
            raise NotFoundError(
                f"job {reference} has no succeeded run with complete artifacts yet "
                f"(its newest run, {newest[0].id}, is {newest[0].state})",
                hint=f"runner artifacts {newest[0].id} shows that run's, if it has any",
            )
        record = self.get(latest)
        note = f"job {reference}: its latest succeeded run, {record.id}"
        if newest[0].id != record.id:
            note += f" (its newest, {newest[0].id}, is {newest[0].state})"
        return record, note

    def artifacts(self, reference: str) -> tuple[RunRecord, list[FileEntry]]:
        record = self.get(reference)
        return record, _complete_files(open_store(record.store_url), record)

    def download(
        self, reference: str, destination: Path, *, only: str | None = None
    ) -> tuple[RunRecord, list[FileEntry]]:
        """Copy a run's artifacts (or only the one at path `only`) into destination, verifying every
        file's checksum."""
        record = self.get(reference)
        store = open_store(record.store_url)  # one store (one S3 client) for the manifest and the files
        files = _complete_files(store, record)
        if only is not None:
            files = [entry for entry in files if entry.path == only.strip("/")]
            if not files:
                raise NotFoundError(
                    f"run {record.id} has no file {only!r}",
                    hint=f"runner artifacts {record.id} lists its files",
                )
        prefix = run_prefix(record.job, record.id)
        for entry in files:
            target = destination / check_key(entry.path)  # MANIFEST.json is data: never trust its paths
            digest = store.download(f"{prefix}/{entry.path}", target)
            if digest.sha256 != entry.sha256 or digest.size != entry.size:
                target.unlink(missing_ok=True)
                raise StoreError(
                    f"{entry.path}: checksum mismatch (expected sha256 {entry.sha256[:12]}..., "
                    f"got {digest.sha256[:12]}...); the stored copy is damaged"
                )
        return record, files

    def stored_summary(self, record: RunRecord) -> dict[str, Any]:
        """The run's run.json in the store, read as schema version 2 whichever version wrote it ({} while
        it has none, or it cannot be read)."""
        if not record.state.collected:
            return {}
        try:
            data = open_store(record.store_url).get_bytes(f"{run_prefix(record.job, record.id)}/{RUN_FILE}")
            document = json.loads(data)
        except (RunnerError, ValueError):
            return {}
        return runjson.upgraded(document) if isinstance(document, dict) else {}

    def attempt_ends(self, record: RunRecord) -> dict[int, float]:
        """When each ended attempt of the run ended (seconds since the epoch), as far as its record or
        its run.json say; an attempt still running, or one nothing dates, is not in it."""
        ends: dict[int, float] = {}
        for source in (self.stored_summary(record).get("attempts"), record.outcome.get("attempts")):
            for item in source if isinstance(source, list) else []:
                if not isinstance(item, dict) or not isinstance(item.get("number"), int):
                    continue
                finished = seconds(item.get("finished"))
                if finished is not None:
                    ends.setdefault(item["number"], finished)
        return ends

    def refused(self, record: RunRecord) -> list[tuple[str, str]]:
        """What collection refused to copy (a symlink out of the outputs, a FIFO, ...): (path, reason)."""
        refused = self.stored_summary(record).get("refused") or []
        return [
            (str(item.get("path")), str(item.get("reason"))) for item in refused if isinstance(item, dict)
        ]

    def delete(self, reference: str, *, artifacts: bool, dry_run: bool) -> tuple[cleanup.Removal, list[str]]:
        """Delete a run (runner.service.cleanup): what it removes (or would), and notes on it."""
        record = self.records.resolve(reference)
        cleanup.deletable(record)
        removal = cleanup.plan_removal(record, artifacts=artifacts)
        if dry_run:
            return removal, []
        backend = self.backend_of(record)
        return removal, cleanup.remove(removal, self.records, self.settings, backend, artifacts=artifacts)

    def prune_runs(self, *, older_than: float, job: str | None) -> list[RunRecord]:
        """The runs `runner prune` removes: final ones older than older_than, and stale submits."""
        listed = self.refresh_all(self.records.list(job=job))
        return cleanup.prunable(listed, now=self.clock.time(), older_than=older_than)

    def prune_images(
        self, *, job: str | None, keep: Collection[RunRecord], dry_run: bool
    ) -> list[tuple[str, str | None]]:
        """Job images on this machine's engine that no kept run uses, each job's newest kept: (reference,
        why it could not be removed or None). Nothing when no engine answers."""
        from runner.backends.local import dockerengine as engine

        if not engine.engine_answers():
            return []
        images = [
            cleanup.JobImage(item["reference"], item["id"], item["job"], item["created"])
            for item in engine.job_images(job)
        ]
        unused = cleanup.unused_images(images, cleanup.used_images(keep))
        return [
            (image.reference, None if dry_run else engine.remove_image(image.reference)) for image in unused
        ]

    def location(self, record: RunRecord) -> str:
        try:
            return open_store(record.store_url).location(run_prefix(record.job, record.id)) + "/"
        except UserError:  # a store URL this runner no longer accepts: shown as recorded
            return f"{record.store_url.rstrip('/')}/{run_prefix(record.job, record.id)}/"


def _degradable(error: Exception) -> bool:
    """An error a listing goes on without: the backend said it could not do it (BackendError: no cluster
    configured, an API failure), or its connection failed. Anything else is a bug and is raised."""
    return isinstance(error, BackendError) or connection_problem(error) is not None


def _complete_files(store: Store, record: RunRecord) -> list[FileEntry]:
    """The files of the run's MANIFEST.json; NotFoundError while the run is not complete in the store."""
    files = read_manifest(store, record.job, record.id)
    if files is None:
        hint = "wait for it to finish: runner logs -f " + record.id if not record.state.final else None
        if record.state is RunState.UNCOLLECTED:
            hint = f"its collection failed ({record.message}); runner collect {record.id} tries again"
        raise NotFoundError(f"run {record.id} has no complete artifacts (state: {record.state})", hint=hint)
    return files
