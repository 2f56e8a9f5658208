"""The kubernetes backend: one batch/v1 Job per run through the official client; the cluster is the truth.

Submitting builds and pushes the job image, records the run locally (a cache), then creates the run's
ConfigMap and Job. Names are the run id, so a retried or doubled submit finds its own Job instead of
creating a second one. Status is read from the Job, its pods and their events, and said in the job's
terms (runner.backends.kubernetes.pure.status). Cancelling deletes the Job with foreground propagation.

A schedule's runs (runner.backends.kubernetes.cronjobs) are Jobs its CronJob creates: they carry the
runner.dev/schedule label and no runner.dev/run label, and the Job's name is the run id. Every run's
pods are therefore found by the label the job controller puts on them, batch.kubernetes.io/job-name.

At scale (10,000 runs) `runner list` refreshes its live runs together (refresh_many): their Jobs and
pods come in a few LISTs (named in a set-based selector, or the namespace's runner objects page by
page) instead of a GET and a LIST per run, each of which costs the API server a scan of every object.
Reads take the API's raw JSON (runner.backends.kubernetes.pure.reading decides from it) through
client.get_json, without the client's API classes (importing them costs a second of every `runner list`),
and one API client is kept per kubeconfig and context for the process, so a thousand submissions share
their connections. Each record keeps the resourceVersion of the Job it was last read from (RunRecord.seen).
`runner list --cluster`, and a bulk refresh of more runs than one selector names, list the namespace's
runner Jobs metadata-only (managedFields cut before parsing) and read whole Jobs only for runs this machine
has not recorded yet, or whose Job changed since, or whose state needs their pods (a Job that says
neither finished nor running with every pod ready).

A run's ConfigMap is owned by its Job (patched in once the Job exists), so the garbage collector removes it
with the Job. A run whose Job is gone is read from the run.json its agent wrote into the store when that
tells its end (the TTL controller removed the finished Job before the runner looked).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from runner.backends.base import LogChunk, RunPlan
from runner.backends.identity import is_alive, start_time
from runner.backends.kubernetes import client
from runner.backends.kubernetes.client import (
    JOBS_PATH,
    PODS_PATH,
    REQUEST_TIMEOUT,
    api_error,
    apis,
    get_json,
    job_metadata,
    list_pages,
    read_json,
)
from runner.backends.kubernetes.podlogs import PodLogs
from runner.backends.kubernetes.pure.reading import (
    job_changes,
    missing_job,
    pod_changes,
    pod_selector,
    unchanged,
    unchanged_since_seen,
)
from runner.backends.kubernetes.target import cluster_namespace, target_for
from runner.clock import SYSTEM_CLOCK, Clock
from runner.config import Settings
from runner.errors import BackendError, SubmitError
from runner.records import RunRecord, RunRecords, RunState
from runner.render.kubernetes.conventions import JOB_NAME_LABEL
from runner.spec.labels import MANAGED_BY, MANAGER, RUN_LABEL, SCHEDULE_LABEL

if TYPE_CHECKING:  # the renderings (and pydantic's models under them) load when a run is made, not listed
    from runner.render.kubernetes import ClusterTarget


class KubernetesBackend:
    """The Backend protocol on a cluster: refresh_many reads many runs in a few LISTs, adopt records the
    cluster's runner Jobs this machine does not know, logs reads and follows the pods' logs."""

    name = "kubernetes"

    def __init__(self, context: str | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.context = context
        self.clock = clock

    def _apis(self) -> tuple[Any, Any]:
        return apis(self.context)

    def check(self, plan: RunPlan, settings: Settings) -> None:
        """The inputs (a local path that exists, an s3:// prefix with objects), what several workers
        cannot do on a cluster (retries: check_workers says why), then every prerequisite of a cluster run
        (all of them, said at once): nothing is recorded or built for a cluster that could not run it. The
        cluster schedules, render_job refuses what cannot run there."""
        from runner.backends.kubernetes.inputs import check_inputs
        from runner.render.kubernetes.workers import check_workers

        check_workers(plan.manifest, plan.run_id)
        check_inputs(plan)
        missing = self.missing_prerequisites(plan, settings)
        if missing:
            raise SubmitError(
                "the kubernetes backend cannot run this job yet:\n"
                + "\n".join(f"  - {problem}" for problem in missing),
                hint="fix all of the above, then submit again (nothing was built or created)",
            )

    def prepare(self, plan: RunPlan, settings: Settings, progress: Callable[[str], None]) -> RunPlan:
        """Build and push the image (and upload local inputs) of a checked plan."""
        if not settings.store_secret:  # a pod identity (IRSA, workload identity) may give them instead
            progress(
                "warning: RUNNER_STORE_SECRET is not set: the pods get no credentials for the artifact "
                "store; set it to the name of a Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )
        from runner.backends.kubernetes.inputs import upload_inputs
        from runner.images.build import ensure_image
        from runner.images.push import push_image

        plan = upload_inputs(plan, settings.store_url, progress)  # local inputs into the store, once
        built = ensure_image(
            plan.manifest,
            plan.context_dir,
            registry=settings.registry,
            progress=progress,
            skip=[settings.home],
        )
        push_image(built, progress=progress)
        return replace(plan, image=built.reference)

    def missing_prerequisites(self, plan: RunPlan, settings: Settings) -> list[str]:
        """What a cluster run of plan lacks, every item at once (prerequisites.missing_prerequisites)."""
        from runner.backends.kubernetes.prerequisites import missing_prerequisites

        return missing_prerequisites(plan, settings, self.context)

    def target(self, plan: RunPlan, settings: Settings, namespace: str | None = None) -> ClusterTarget:
        """Where plan runs: target_for in this backend's kubeconfig context."""
        return target_for(plan, settings, namespace, context=self.context)

    def objects(self, plan: RunPlan, target: ClusterTarget) -> list[dict[str, Any]]:
        """The run's ConfigMap and Job: what launch sends, and what `runner render --kubernetes` prints."""
        from runner.render.kubernetes import render_run

        return render_run(plan.manifest, target, run_id=plan.run_id, manifest_text=plan.manifest_text)

    def launch(self, plan: RunPlan, records: RunRecords, settings: Settings) -> RunRecord:
        from runner.render.kubernetes import owned_by

        namespace = cluster_namespace(plan.manifest, None, self.context)
        target = self.target(plan, settings, namespace)
        objects = self.objects(plan, target)  # render first: a manifest that cannot run is refused
        record = RunRecord(
            id=plan.run_id,
            job=plan.manifest.name,
            backend=self.name,
            state=RunState.PENDING,
            created=self.clock.time(),
            workdir="",
            store_url=settings.store_url,
            manifest=plan.manifest_text,
            launch={
                "namespace": namespace,
                "context": self.context,
                "created": False,
                "image": plan.image,
                "gpus": plan.manifest.spec.resources.gpu,
                "gpuType": plan.manifest.spec.resources.gpu_type,
                "memory": plan.manifest.spec.resources.memory,
                "workers": plan.manifest.spec.workers,
            },
            labels=plan.labels,
            max_attempts=plan.manifest.spec.retries + 1,
            message="submitting",
            supervisor_pid=os.getpid(),  # while it lives and nothing is created, the run is submitting
            supervisor_start=start_time(os.getpid()),
        )
        records.create(
            record
        )  # before the Job: a runner killed in between leaves a record, never a stray Job
        batch, core = self._apis()
        created, fresh = {}, {}
        for obj in objects:
            if obj["kind"] != "Service":
                created[obj["kind"]], fresh[obj["kind"]] = self._create(
                    batch, core, namespace, obj, plan.run_id
                )
        if "ConfigMap" in created and "Job" in created:
            self._own(core, namespace, created["ConfigMap"], created["Job"])
        for service in (obj for obj in objects if obj["kind"] == "Service"):
            owned = owned_by(service, created["Job"])
            self._create_service(batch, core, namespace, owned, records, repeated=not fresh["Job"])
        return records.update(
            plan.run_id,
            launch={**record.launch, "created": True},
            message=f"Job {namespace}/{plan.run_id} created",
            supervisor_pid=None,
            supervisor_start=None,
        )

    def _create(
        self, batch: Any, core: Any, namespace: str, obj: dict[str, Any], run_id: str
    ) -> tuple[dict[str, Any], bool]:
        """Create obj; the object as the API has it (this run's own, when a retried create conflicts),
        and whether this call created it."""
        import json

        from kubernetes.client.exceptions import ApiException

        kind, name = obj["kind"], obj["metadata"]["name"]
        create, read = {
            "ConfigMap": (core.create_namespaced_config_map, core.read_namespaced_config_map),
            "Job": (batch.create_namespaced_job, batch.read_namespaced_job),
        }[kind]
        try:
            answer = create(namespace, obj, _request_timeout=REQUEST_TIMEOUT, _preload_content=False)
            found: dict[str, Any] = json.loads(answer.data)
            return found, True
        except ApiException as error:
            if error.status != 409:
                raise api_error(error, f"creating {kind} {namespace}/{name}") from None
        try:
            existing: dict[str, Any] = read_json(read, name, namespace)
        except ApiException as error:
            raise api_error(error, f"reading {kind} {namespace}/{name}") from None
        owner = (existing["metadata"].get("labels") or {}).get(RUN_LABEL)
        if owner != run_id:  # a name clash with something that is not this run
            raise BackendError(f"{kind} {namespace}/{name} already exists and is not run {run_id}")
        return existing, False

    def _own(self, core: Any, namespace: str, config_map: dict[str, Any], job: dict[str, Any]) -> None:
        """Make the Job the owner of the run's ConfigMap, so that the garbage collector removes it with
        the Job (its TTL, kubectl delete). Only metadata changes: the ConfigMap's data is immutable. The
        Job's uid exists only once it is created, after the ConfigMap its pod mounts."""
        from kubernetes.client.exceptions import ApiException

        from runner.render.kubernetes import owned_by

        owned = owned_by(config_map, job)["metadata"]["ownerReferences"]
        if config_map["metadata"].get("ownerReferences") == owned:
            return  # a repeated submit: already owned
        name = config_map["metadata"]["name"]
        try:
            core.patch_namespaced_config_map(
                name,
                namespace,
                {"metadata": {"ownerReferences": owned}},
                _request_timeout=REQUEST_TIMEOUT,
                _preload_content=False,
            )
        except ApiException as error:
            raise api_error(error, f"making Job {namespace}/{name} the owner of its ConfigMap") from None

    def _create_service(
        self,
        batch: Any,
        core: Any,
        namespace: str,
        service: dict[str, Any],
        records: RunRecords,
        *,
        repeated: bool,
    ) -> None:
        """Create a multi-worker run's headless Service, already owned by its Job (created just before),
        so that the garbage collector removes it with the Job and no request of runner's ever does:
        the Role grants services only create. Created after the Job, its pods may start before their
        names resolve; TensorFlow and the other frameworks retry until their peers answer.

        409: a Service of the run's name exists. When this submit repeats an earlier one of the run
        (its Job existed: _create read it back and checked it is this run's), that one made it; with a
        Job created just now, it is a stranger's, which would give the workers wrong addresses (and
        reading it would need a grant only this check would use).
        A Service that cannot be made leaves nothing:
        the Job (with its pods and, through its owner, the ConfigMap) is deleted and the run fails."""
        from kubernetes.client.exceptions import ApiException

        name = service["metadata"]["name"]
        try:
            core.create_namespaced_service(
                namespace, service, _request_timeout=REQUEST_TIMEOUT, _preload_content=False
            )
            return
        except ApiException as error:
            if error.status == 409 and repeated:
                return
            problem = api_error(error, f"creating Service {namespace}/{name} for the run's workers")
            if error.status == 409:
                problem = BackendError(
                    f"Service {namespace}/{name} already exists and is not run {name}'s",
                    hint="delete that Service, or submit again (a new run id)",
                )
        self._delete_run(batch, core, namespace, name)
        records.update(name, state=RunState.FAILED, finished=self.clock.time(), message=str(problem))
        raise problem

    def _delete_run(self, batch: Any, core: Any, namespace: str, run_id: str) -> None:
        """Delete the run's Job in the foreground (its pods first; its Service and ConfigMap, which it
        owns, go with it) and its ConfigMap, which a submit stopped before _own left unowned."""
        from kubernetes.client import V1DeleteOptions
        from kubernetes.client.exceptions import ApiException

        for delete in (batch.delete_namespaced_job, core.delete_namespaced_config_map):
            try:
                delete(
                    run_id,
                    namespace,
                    body=V1DeleteOptions(propagation_policy="Foreground"),
                    _request_timeout=REQUEST_TIMEOUT,
                )
            except ApiException as error:
                if error.status != 404:
                    raise api_error(error, f"deleting run {run_id}") from None

    def cancel(self, record: RunRecord, records: RunRecords, settings: Settings) -> None:
        batch, core = self._apis()
        self._delete_run(batch, core, record.launch["namespace"], record.id)
        records.update(
            record.id,
            state=RunState.CANCELLED,
            finished=self.clock.time(),
            message="cancelled: the Job was deleted (foreground)",
        )

    def refresh(self, record: RunRecord, records: RunRecords, settings: Settings) -> RunRecord:
        if record.state.terminal:
            return record
        from kubernetes.client.exceptions import ApiException

        namespace = record.launch["namespace"]
        try:
            job = get_json(self.context, f"{JOBS_PATH}/{record.id}", namespace)
        except ApiException as error:
            if error.status != 404:
                raise api_error(error, f"reading run {record.id}") from None
            return records.update(
                record.id,
                **missing_job(record, self.clock.time(), stored_run(record), submitting=submitting(record)),
            )
        changes, needs_pods = job_changes(record, job)
        if needs_pods:
            try:
                pods = get_json(
                    self.context, PODS_PATH, namespace, [("labelSelector", pod_selector(record.id))]
                )
            except ApiException as error:
                raise api_error(error, f"reading the pods of run {record.id}") from None
            changes = pod_changes(record, pods.get("items") or [], changes)
        return records.update(record.id, **changes)

    def refresh_many(
        self, runs: Sequence[RunRecord], records: RunRecords, settings: Settings
    ) -> dict[str, RunRecord]:
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
                fresh[group[0].id] = self.refresh(group[0], records, settings)
            else:
                fresh.update(self._refresh_namespace(namespace, group, records))
        return fresh

    def _refresh_namespace(
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
        from kubernetes.client.exceptions import ApiException

        try:
            if listed is None and len(group) > client.SELECT_AT_MOST and not self._read_all(group):
                listed = job_metadata(self.context, namespace, f"{MANAGED_BY}={MANAGER}")
            current = {
                record.id
                for record in group
                if listed is not None
                and record.id in listed
                and unchanged_since_seen(record, listed[record.id])
            }
            wanted = [
                record
                for record in group
                if record.id not in current and (listed is None or record.id in listed)
            ]
            selects = client.SELECTS_AT_MOST if listed is not None else 1
            jobs = self._jobs_of(namespace, wanted, selects=selects) if wanted else {}
            changes: dict[str, dict[str, Any]] = {}
            waiting: list[RunRecord] = []
            now = self.clock.time()
            for record in group:
                if record.id in current:
                    continue
                job = jobs.get(record.id)
                if job is None:
                    changes[record.id] = missing_job(
                        record, now, stored_run(record), submitting=submitting(record)
                    )
                    continue
                changes[record.id], needs_pods = job_changes(record, job)
                if needs_pods:
                    waiting.append(record)
            pods = self._pods_of(namespace, [record.id for record in waiting])
        except ApiException as error:
            raise api_error(error, f"reading the runs of namespace {namespace}") from None
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
    def _read_all(group: Sequence[RunRecord]) -> bool:
        """Whether more of the group's Jobs must be read whole, whatever a metadata list would say (never
        read, or their pods needed), than one selector names: all of the namespace's are then listed
        whole at once, and a metadata list first would only add to it."""
        must = [record for record in group if (record.seen or {}).get("pods") is not False]
        return len(must) > client.SELECT_AT_MOST

    def _jobs_of(
        self, namespace: str, group: Sequence[RunRecord], *, selects: int = 1
    ) -> dict[str, dict[str, Any]]:
        """The Jobs of the group's runs by name: named in set-based selectors of SELECT_AT_MOST runs each,
        when they are at most selects times that many (a schedule's run, which has no runner.dev/run
        label, by a GET; no more of those than one selector names), else every runner Job of the
        namespace. selects > 1 where the
        runs are those of the namespace's Jobs that changed: each selector's LIST costs the API server a
        scan of the namespace, but the client reads only the Jobs it names, not all of them."""
        from kubernetes.client.exceptions import ApiException

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
            except ApiException as error:
                if error.status != 404:
                    raise
        return jobs

    def _pods_of(self, namespace: str, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
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

    def adopt(self, records: RunRecords, namespace: str | None, settings: Settings) -> list[str]:
        """Record every runner Job of the namespace that this machine does not know yet; their run ids
        (runner.backends.kubernetes.adoption)."""
        from runner.backends.kubernetes.adoption import adopt_jobs

        return adopt_jobs(
            records,
            namespace,
            settings,
            context=self.context,
            clock=self.clock,
            pods_of=self._pods_of,
            refresh=lambda space, group, listed: self._refresh_namespace(space, group, records, listed),
        )

    def logs(
        self,
        record: RunRecord,
        *,
        follow: bool,
        attempt: int | None,
        current: Callable[[], RunRecord],
        clock: Clock,
        poll: float = 5.0,
    ) -> Iterator[LogChunk]:
        """The log of every pod of the run (or of one attempt's), oldest first; each pod is one attempt.

        A followed stream can drop; once it ends, the whole log is fetched again and only what was
        not yet seen is passed on, so no line is lost or doubled.
        """
        _, core = self._apis()
        chunks = PodLogs(core, clock).of_run(record, follow=follow, current=current, poll=poll)
        for number, worker, data in chunks:
            if attempt in (None, number):
                yield LogChunk(number, data, worker=worker)


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
