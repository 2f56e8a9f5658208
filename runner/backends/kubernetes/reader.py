"""How the kubernetes backend reads its runs: one run from its Job (and its pods, where the Job cannot tell),
many at once in a few LISTs, and a run whose Job is gone from the run.json its agent stored.

At scale (10,000 runs) `runner list` refreshes its live runs together (refresh_many): their Jobs and
pods come in a few LISTs (named in set-based selectors, or the namespace's runner objects page by page)
instead of a GET and a LIST per run, each of which costs the API server a scan of every object. Each
record keeps the resourceVersion of the Job it was last read from (RunRecord.seen): a bulk refresh of
more runs than one selector names, and `runner list --cluster` (adoption), list the namespace's runner
Jobs metadata-only (managedFields cut before parsing) and read whole Jobs only for runs whose Job is new
or changed since, or whose state needs their pods (a Job that says neither finished nor running with
every pod ready). What the answers mean is decided in runner.backends.kubernetes.pure.reading.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runner.backends.identity import is_alive
from runner.backends.kubernetes import client
from runner.backends.kubernetes.client import (
    JOBS_PATH,
    PODS_PATH,
    api_error,
    api_errors,
    api_status,
    get_json,
    job_metadata,
    list_pages,
)
from runner.backends.kubernetes.pure.reading import (
    job_changes,
    missing_job,
    pod_changes,
    pod_selector,
    unchanged,
    unchanged_since_seen,
)
from runner.clock import Clock
from runner.records import RunRecord, RunRecords
from runner.render.kubernetes.conventions import JOB_NAME_LABEL
from runner.spec.labels import MANAGED_BY, MANAGER, RUN_LABEL, SCHEDULE_LABEL


class RunReader:
    """The runs of one kubeconfig context, read from the cluster into their records."""

    def __init__(self, context: str | None, clock: Clock) -> None:
        self.context = context
        self.clock = clock

    def refresh(self, record: RunRecord, records: RunRecords) -> RunRecord:
        """The run brought up to date from its Job (and its pods, where the Job cannot tell)."""
        if record.state.terminal:
            return record
        namespace = record.launch["namespace"]
        try:
            job = get_json(self.context, f"{JOBS_PATH}/{record.id}", namespace)
        except Exception as error:
            status = api_status(error)
            if status is None:
                raise
            if status != 404:
                raise api_error(error, f"reading run {record.id}") from None
            return records.update(record.id, **self.without_job(record, records, self.clock.time()))
        changes, needs_pods = job_changes(record, job)
        if needs_pods:
            with api_errors(f"reading the pods of run {record.id}"):
                pods = get_json(
                    self.context, PODS_PATH, namespace, [("labelSelector", pod_selector(record.id))]
                )
            changes = pod_changes(record, pods.get("items") or [], changes)
        return records.update(record.id, **changes)

    def refresh_many(self, runs: Sequence[RunRecord], records: RunRecords) -> dict[str, RunRecord]:
        """Refresh many runs at once, by run id: per namespace, their Jobs in one LIST (a set-based
        selector naming them), then the pods of those still going the same way. More runs than one
        selector names: the namespace's runner Jobs are listed metadata-only first, and whole Jobs are
        read only for runs whose Job changed since it was last read (RunRecord.seen) or whose state
        needs their pods (when those alone are more than a selector names, every runner Job of the
        namespace is listed whole at once, as a metadata list would only add to that). A few requests
        however many runs; each run reads as refresh() would read it. Records that did not change are
        not written."""
        live = [record for record in runs if not record.state.terminal]
        by_namespace: dict[str, list[RunRecord]] = {}
        for record in live:
            by_namespace.setdefault(record.launch["namespace"], []).append(record)
        fresh: dict[str, RunRecord] = {}
        for namespace, group in by_namespace.items():
            if len(group) == 1:
                fresh[group[0].id] = self.refresh(group[0], records)
            else:
                fresh.update(self.refresh_namespace(namespace, group, records))
        return fresh

    def refresh_namespace(
        self,
        namespace: str,
        group: list[RunRecord],
        records: RunRecords,
        listed: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> dict[str, RunRecord]:
        """The group's runs brought up to date. listed: the metadata of the namespace's runner Jobs by
        name, listed just now (adoption has it); a group too large for one selector lists it here. With
        it, a run whose Job is at the version last read, and whose pods that reading did not need, is
        left as recorded; a run whose Job it does not hold is gone (missing_job)."""
        with api_errors(f"reading the runs of namespace {namespace}"):
            if listed is None and len(group) > client.SELECT_AT_MOST and not self._read_all(group):
                listed = job_metadata(self.context, namespace, f"{MANAGED_BY}={MANAGER}")
            current = {
                record.id
                for record in group
                if listed is not None
                and record.id in listed
                and unchanged_since_seen(record.seen, listed[record.id])
            }
            wanted = [
                record
                for record in group
                if record.id not in current and (listed is None or record.id in listed)
            ]
            selects = client.SELECTS_AT_MOST if listed is not None else 1
            jobs = self.jobs_of(namespace, wanted, selects=selects) if wanted else {}
            changes: dict[str, dict[str, Any]] = {}
            waiting: list[RunRecord] = []
            now = self.clock.time()
            for record in group:
                if record.id in current:
                    continue
                job = jobs.get(record.id)
                if job is None:
                    changes[record.id] = self.without_job(record, records, now)
                    continue
                changes[record.id], needs_pods = job_changes(record, job)
                if needs_pods:
                    waiting.append(record)
            pods = self.pods_of(namespace, [record.id for record in waiting])
        for record in waiting:
            changes[record.id] = pod_changes(record, pods.get(record.id, []), changes[record.id])
        fresh: dict[str, RunRecord] = {}
        with records.exclusive():  # one transaction, not one per run
            for record in group:
                if record.id in current or unchanged(record, changes[record.id]):
                    fresh[record.id] = record
                else:
                    fresh[record.id] = records.update(record.id, **changes[record.id])
        return fresh

    @staticmethod
    def without_job(record: RunRecord, records: RunRecords, now: float) -> dict[str, Any]:
        """The changes of a run whose Job was not found (missing_job). One whose submission seems to have
        stopped before creating it is read again first: a submission that created the Job (and recorded
        so) after it was looked for, then ended, is not lost; the next reading finds its Job."""
        alive = submitting(record)  # asked once: a second asking could find it ended since the first
        if not record.launch.get("created") and not alive:
            current = records.find(record.id)
            if current is not None and (current.launch.get("created") or submitting(current)):
                return {}
        return missing_job(record, now, stored_run(record), submitting=alive)

    @staticmethod
    def _read_all(group: Sequence[RunRecord]) -> bool:
        """Whether more of the group's Jobs must be read whole, whatever a metadata list would say (never
        read, or their pods needed), than one selector names: all of the namespace's are then listed
        whole at once, and a metadata list first would only add to it."""
        must = [record for record in group if (record.seen or {}).get("pods") is not False]
        return len(must) > client.SELECT_AT_MOST

    def jobs_of(
        self, namespace: str, group: Sequence[RunRecord], *, selects: int = 1
    ) -> dict[str, dict[str, Any]]:
        """The Jobs of the group's runs by name: named in set-based selectors of SELECT_AT_MOST runs each,
        when they are at most selects times that many (a schedule's run, which has no runner.dev/run
        label, by a GET; no more of those than one selector names), else every runner Job of the
        namespace. selects > 1 where the
        runs are those of the namespace's Jobs that changed: each selector's LIST costs the API server a
        scan of the namespace, but the client reads only the Jobs it names, not all of them."""
        named = sorted(record.id for record in group if not record.labels.get(SCHEDULE_LABEL))
        unnamed = [record.id for record in group if record.labels.get(SCHEDULE_LABEL)]
        at_most = client.SELECT_AT_MOST
        if len(group) > at_most * selects or len(unnamed) > at_most:
            items = list_pages(self.context, JOBS_PATH, namespace, f"{MANAGED_BY}={MANAGER}")
            return {job["metadata"]["name"]: job for job in items}
        jobs: dict[str, dict[str, Any]] = {}
        for start in range(0, len(named), at_most):
            selector = f"{RUN_LABEL} in ({','.join(named[start : start + at_most])})"
            jobs.update(
                (job["metadata"]["name"], job)
                for job in list_pages(self.context, JOBS_PATH, namespace, selector)
            )
        for run_id in unnamed:
            try:
                jobs[run_id] = get_json(self.context, f"{JOBS_PATH}/{run_id}", namespace)
            except Exception as error:
                if api_status(error) != 404:
                    raise
        return jobs

    def pods_of(self, namespace: str, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """The pods of these runs, by run id, in the API's order (named in one selector when few)."""
        if not run_ids:
            return {}
        if len(run_ids) > client.SELECT_AT_MOST:
            selector = f"{MANAGED_BY}={MANAGER}"
        else:
            selector = f"{JOB_NAME_LABEL} in ({','.join(sorted(run_ids))})"
        wanted = set(run_ids)
        pods: dict[str, list[dict[str, Any]]] = {}
        for pod in list_pages(self.context, PODS_PATH, namespace, selector):
            owner = (pod["metadata"].get("labels") or {}).get(JOB_NAME_LABEL)
            if owner in wanted:
                pods.setdefault(owner, []).append(pod)
        return pods


def submitting(record: RunRecord) -> bool:
    """Whether the process submitting the run (which names itself in the record until its objects are
    created) is still at it: a Job not there yet is then still to come, not lost."""
    return is_alive(record.supervisor_pid, record.supervisor_start)


def stored_run(record: RunRecord) -> dict[str, Any] | None:
    """The run.json the run's agent wrote into the store, or None (none yet, or the store cannot be
    read from here): how a run whose Job is gone ended, where the Job can no longer say."""
    import json

    from runner.errors import RunnerError
    from runner.store import open_store
    from runner.store.collect import RUN_FILE, run_prefix

    if not record.store_url:
        return None
    try:
        document = json.loads(
            open_store(record.store_url).get_bytes(f"{run_prefix(record.job, record.id)}/{RUN_FILE}")
        )
    except (RunnerError, ValueError):
        return None
    return document if isinstance(document, dict) else None
