"""The kubernetes backend: one batch/v1 Job per run through the official client; the cluster is the truth.

Submitting builds and pushes the job image, records the run locally (a cache), then creates the run's
ConfigMap and Job. Names are the run id, so a retried or doubled submit finds its own Job instead of
creating a second one. Status is read from the Job, its pods and their events, and said in the job's
terms (runner.backends.kubernetes.pure.status). Cancelling deletes the Job with foreground propagation.

A schedule's runs (runner.backends.kubernetes.cronjobs) are Jobs its CronJob creates: they carry the
runner.dev/schedule label and no runner.dev/run label, and the Job's name is the run id. Every run's
pods are therefore found by the label the job controller puts on them, batch.kubernetes.io/job-name.

Reading runs (one, many at once, a Job gone) is runner.backends.kubernetes.reader's RunReader. Reads
take the API's raw JSON through client.get_json, without the client's API classes (importing them costs
a second of every `runner list`), and one API client is kept per kubeconfig and context for the process,
so a thousand submissions share their connections.

A run's ConfigMap is owned by its Job (patched in once the Job exists), so the garbage collector removes it
with the Job. A run whose Job is gone is read from the run.json its agent wrote into the store when that
tells its end (the TTL controller removed the finished Job before the runner looked).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from runner.backends.base import LogChunk, RunPlan
from runner.backends.identity import start_time
from runner.backends.kubernetes.client import (
    REQUEST_TIMEOUT,
    api_error,
    apis,
    read_json,
)
from runner.backends.kubernetes.podlogs import PodLogs
from runner.backends.kubernetes.reader import RunReader
from runner.backends.kubernetes.target import cluster_namespace, target_for
from runner.clock import SYSTEM_CLOCK, Clock
from runner.config import Settings
from runner.errors import BackendError, SubmitError
from runner.records import RunRecord, RunRecords, RunState
from runner.spec.labels import RUN_LABEL

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
        return self._reader().refresh(record, records)

    def refresh_many(
        self, runs: Sequence[RunRecord], records: RunRecords, settings: Settings
    ) -> dict[str, RunRecord]:
        """Refresh many runs at once, by run id, in a few requests (RunReader.refresh_many)."""
        return self._reader().refresh_many(runs, records)

    def _reader(self) -> RunReader:
        return RunReader(self.context, self.clock)

    def adopt(self, records: RunRecords, namespace: str | None, settings: Settings) -> list[str]:
        """Record every runner Job of the namespace that this machine does not know yet; their run ids
        (runner.backends.kubernetes.adoption)."""
        from runner.backends.kubernetes.adoption import adopt_jobs

        reader = self._reader()
        return adopt_jobs(
            records,
            namespace,
            settings,
            context=self.context,
            clock=self.clock,
            pods_of=reader.pods_of,
            refresh=lambda space, group, listed: reader.refresh_namespace(space, group, records, listed),
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
