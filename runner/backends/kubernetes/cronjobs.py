"""Schedules on a cluster: one batch/v1 CronJob per scheduled manifest, through the official client.

The CronJob controller starts the runs; the runner only writes, reads and removes CronJobs, so a
schedule keeps running with no runner anywhere. Applying a manifest creates or replaces its CronJob
(named after the job) and its ConfigMap (named by the manifest's digest, owned by the CronJob so that
deleting the schedule deletes it); an older ConfigMap goes once no unfinished run mounts it. Each
Job the CronJob creates is an ordinary run (the cluster backend, backend.py, adopts, follows and
cancels it).

Only runner schedules are touched: an object without the runner's labels under the same name is
refused, never overwritten. The decisions (views, the trigger's Job, which ConfigMaps go) are pure, in
runner.backends.kubernetes.pure.cronjobs; this module is their I/O. What `list` and `get` return is
the one ScheduleView of every schedule (runner.records.schedule_view), as this machine's schedules do.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from runner.backends.base import RunPlan
from runner.backends.kubernetes.client import REQUEST_TIMEOUT, api_error, apis, default_namespace
from runner.backends.kubernetes.pure.cronjobs import (
    cronjob_view,
    labelled_schedule,
    manual_job,
    unused_config_maps,
)
from runner.backends.kubernetes.target import cluster_namespace, target_for
from runner.clock import SYSTEM_CLOCK, Clock, utc_now
from runner.config import Settings
from runner.errors import BackendError, NotFoundError
from runner.records.schedule_view import ScheduleView
from runner.spec.labels import MANAGED_BY, MANAGER, SCHEDULE_LABEL
from runner.spec.model import new_run_id

# A replace that loses a race with another writer (the controller updates status, a second apply) is
# read and tried again; a trigger whose random name is taken draws another.
ATTEMPTS = 3

# Named here: inside CronJobs, `list` is its method.
Objects = list[dict[str, Any]]
Views = list[ScheduleView]
Names = list[str]


@dataclass(frozen=True)
class Applied:
    """What apply did: the CronJob created (or replaced), its ConfigMap, and older ConfigMaps removed."""

    name: str
    namespace: str
    created: bool
    config_map: str
    removed: tuple[str, ...] = ()


class CronJobs:
    """The runner's schedules in a cluster's namespaces (kubeconfig context as for kubectl).

    clock gives the time next runs are computed from (tests pass a fixed one).
    """

    def __init__(self, context: str | None = None, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.context = context
        self.clock = clock

    def namespace(self, namespace: str | None = None) -> str:
        """namespace, else the kubeconfig context's (as kubectl chooses it)."""
        return namespace or default_namespace(self.context)

    # ------------------------------------------------------------------------------------ writing

    def objects(self, plan: RunPlan, settings: Settings, namespace: str | None = None) -> Objects:
        """The ConfigMap and CronJob that apply sends (`--dry-run` prints them); namespace as apply's."""
        from runner.render.kubernetes import render_schedule

        what = "a schedule is applied from"
        target = target_for(plan, settings, namespace, context=self.context, what=what)
        return render_schedule(plan.manifest, target, manifest_text=plan.manifest_text)

    def apply(self, plan: RunPlan, settings: Settings, namespace: str | None = None) -> Applied:
        """Create or replace the schedule of plan's manifest (its image built and pushed) in namespace,
        else the manifest's spec.kubernetes.namespace, else the kubeconfig context's.

        The manifest is the truth: a re-apply replaces the whole CronJob, spec.schedule.suspend
        included (a schedule paused with set_suspended is resumed unless the manifest says suspend).
        """
        namespace = cluster_namespace(plan.manifest, namespace, self.context)
        config_map, cronjob = self.objects(plan, settings, namespace)  # refused before anything is sent
        name, current = cronjob["metadata"]["name"], config_map["metadata"]["name"]
        batch, core = self._apis()
        # The ConfigMap first: the CronJob may fire at once, and its pod mounts it.
        stored_map = self._create_config_map(core, namespace, config_map, name)
        stored, created = self._put_cronjob(batch, namespace, cronjob)
        self._own(core, namespace, stored_map, stored)
        removed = self._remove_unused(batch, core, namespace, name, current)
        return Applied(name, namespace, created, current, tuple(removed))

    def set_suspended(self, name: str, namespace: str | None, suspended: bool) -> ScheduleView:
        """Pause (True) or resume (False) a schedule; runs under way go on. Its view afterwards."""
        namespace = self.namespace(namespace)
        batch, _ = self._apis()
        self._read_schedule(batch, name, namespace)
        patched = self._call(
            f"{'pausing' if suspended else 'resuming'} schedule {namespace}/{name}",
            batch.patch_namespaced_cron_job,
            name,
            namespace,
            {"spec": {"suspend": suspended}},
        )
        return cronjob_view(patched, self._jobs(batch, namespace, name), utc_now(self.clock))

    def trigger(self, name: str, namespace: str | None = None) -> str:
        """Start a run of the schedule now, as `kubectl create job --from=cronjob/NAME` does; its run id.

        The run is a Job named <schedule>-<6 random characters> (a run id like a submitted run's),
        owned by the CronJob. Like kubectl's, it starts whether the schedule is paused or not and
        whatever its concurrency policy: it is asked for explicitly.
        """
        from kubernetes.client.exceptions import ApiException

        namespace = self.namespace(namespace)
        batch, _ = self._apis()
        cronjob = self._read_schedule(batch, name, namespace)
        for _ in range(ATTEMPTS):
            run_id = new_run_id(name)
            try:
                batch.create_namespaced_job(
                    namespace, manual_job(cronjob, run_id), _request_timeout=REQUEST_TIMEOUT
                )
            except ApiException as error:
                if error.status == 409:
                    continue  # the name is taken: draw another
                raise api_error(error, f"starting a run of schedule {namespace}/{name}") from None
            return run_id
        raise BackendError(f"no free run id for schedule {namespace}/{name} after {ATTEMPTS} tries")

    def delete(self, name: str, namespace: str | None = None) -> None:
        """Delete a schedule: its CronJob now; its runs' Jobs (running ones stop, their agents collect)
        and its ConfigMaps follow by garbage collection, as they are owned by it."""
        from kubernetes.client import V1DeleteOptions

        namespace = self.namespace(namespace)
        batch, core = self._apis()
        self._read_schedule(batch, name, namespace)
        self._call(
            f"deleting schedule {namespace}/{name}",
            batch.delete_namespaced_cron_job,
            name,
            namespace,
            body=V1DeleteOptions(propagation_policy="Background"),
            missing_ok=True,
            raw=False,
        )
        # A ConfigMap whose apply was cut before it was owned is not collected: remove it here.
        for config_map in self._config_maps(core, namespace, name):
            if not config_map["metadata"].get("ownerReferences"):
                self._delete_config_map(core, namespace, config_map["metadata"]["name"])

    # ------------------------------------------------------------------------------------ reading

    def list(self, namespace: str | None = None) -> Views:
        """The runner's schedules in a namespace, by name."""
        namespace = self.namespace(namespace)
        batch, _ = self._apis()
        selector = f"{MANAGED_BY}={MANAGER},{SCHEDULE_LABEL}"
        cronjobs = self._call(
            f"listing the schedules in {namespace}",
            batch.list_namespaced_cron_job,
            namespace,
            label_selector=selector,
        )["items"]
        jobs = self._call(
            f"listing the runs of schedules in {namespace}",
            batch.list_namespaced_job,
            namespace,
            label_selector=selector,
        )["items"]
        now = utc_now(self.clock)
        views = [
            cronjob_view(
                cronjob, [job for job in jobs if labelled_schedule(job) == labelled_schedule(cronjob)], now
            )
            for cronjob in cronjobs
        ]
        return sorted(views, key=lambda view: view.name)

    def get(self, name: str, namespace: str | None = None) -> ScheduleView:
        """One schedule; NotFoundError when the namespace has no runner schedule of that name."""
        namespace = self.namespace(namespace)
        batch, _ = self._apis()
        cronjob = self._read_schedule(batch, name, namespace)
        return cronjob_view(cronjob, self._jobs(batch, namespace, name), utc_now(self.clock))

    # ------------------------------------------------------------------------------------ helpers

    def _apis(self) -> tuple[Any, Any]:
        return apis(self.context)

    def _call(
        self, doing: str, method: Any, *args: Any, missing_ok: bool = False, raw: bool = True, **kwargs: Any
    ) -> Any:
        """Call the API; the answer as the API's own JSON (raw) or the client's model. An API error
        becomes a BackendError saying what was being done; a 404 is None when missing_ok."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            answer = method(*args, _request_timeout=REQUEST_TIMEOUT, _preload_content=not raw, **kwargs)
        except ApiException as error:
            if missing_ok and error.status == 404:
                return None
            raise api_error(error, doing) from None
        except HTTPError as error:
            raise BackendError(
                f"{doing}: the Kubernetes API cannot be reached ({error})",
                hint="check the cluster and the kubeconfig context (kubectl cluster-info)",
            ) from None
        return json.loads(answer.data) if raw else answer

    def _read_schedule(self, batch: Any, name: str, namespace: str) -> dict[str, Any]:
        cronjob = self._call(
            f"reading schedule {namespace}/{name}",
            batch.read_namespaced_cron_job,
            name,
            namespace,
            missing_ok=True,
        )
        if cronjob is None:
            raise NotFoundError(
                f"no schedule {name!r} in namespace {namespace}",
                hint=f"`runner schedule list -n {namespace}` shows the schedules there",
            )
        _check_ours(cronjob, name)
        result: dict[str, Any] = cronjob
        return result

    def _jobs(self, batch: Any, namespace: str, name: str) -> Objects:
        jobs: Objects = self._call(
            f"listing the runs of schedule {namespace}/{name}",
            batch.list_namespaced_job,
            namespace,
            label_selector=f"{MANAGED_BY}={MANAGER},{SCHEDULE_LABEL}={name}",
        )["items"]
        return jobs

    def _config_maps(self, core: Any, namespace: str, name: str) -> Objects:
        config_maps: Objects = self._call(
            f"listing the ConfigMaps of schedule {namespace}/{name}",
            core.list_namespaced_config_map,
            namespace,
            label_selector=f"{MANAGED_BY}={MANAGER},{SCHEDULE_LABEL}={name}",
        )["items"]
        return config_maps

    def _create_config_map(
        self, core: Any, namespace: str, config_map: dict[str, Any], name: str
    ) -> dict[str, Any]:
        """Create the ConfigMap, or find it: its name is the manifest's digest, so one that exists and
        is this schedule's holds the same manifest."""
        from kubernetes.client.exceptions import ApiException

        map_name = config_map["metadata"]["name"]
        try:
            created: dict[str, Any] = json.loads(
                core.create_namespaced_config_map(
                    namespace, config_map, _request_timeout=REQUEST_TIMEOUT, _preload_content=False
                ).data
            )
            return created
        except ApiException as error:
            if error.status != 409:
                raise api_error(error, f"creating ConfigMap {namespace}/{map_name}") from None
        existing: dict[str, Any] = self._call(
            f"reading ConfigMap {namespace}/{map_name}", core.read_namespaced_config_map, map_name, namespace
        )
        if labelled_schedule(existing) != name or existing.get("data") != config_map["data"]:
            raise BackendError(
                f"ConfigMap {namespace}/{map_name} already exists and is not schedule {name}'s manifest",
                hint=f"remove it (kubectl delete configmap -n {namespace} {map_name}) and apply again",
            )
        return existing

    def _put_cronjob(
        self, batch: Any, namespace: str, cronjob: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        """Create the CronJob, or replace the runner's own at the version read (no lost update)."""
        from kubernetes.client.exceptions import ApiException

        name = cronjob["metadata"]["name"]
        doing = f"applying schedule {namespace}/{name}"
        for _ in range(ATTEMPTS):
            existing = self._call(doing, batch.read_namespaced_cron_job, name, namespace, missing_ok=True)
            try:
                if existing is None:
                    answer = batch.create_namespaced_cron_job(
                        namespace, cronjob, _request_timeout=REQUEST_TIMEOUT, _preload_content=False
                    )
                    return json.loads(answer.data), True
                _check_ours(existing, name)
                body = copy.deepcopy(cronjob)
                body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
                answer = batch.replace_namespaced_cron_job(
                    name, namespace, body, _request_timeout=REQUEST_TIMEOUT, _preload_content=False
                )
                return json.loads(answer.data), False
            except ApiException as error:
                if error.status != 409:  # 409: created or changed meanwhile; read it again
                    raise api_error(error, doing) from None
        raise BackendError(f"{doing}: it kept changing while being applied", hint="apply again")

    def _own(self, core: Any, namespace: str, config_map: dict[str, Any], cronjob: dict[str, Any]) -> None:
        """Make the CronJob the ConfigMap's owner, so that deleting the schedule deletes it."""
        meta = cronjob["metadata"]
        owner = {"apiVersion": "batch/v1", "kind": "CronJob", "name": meta["name"], "uid": meta["uid"]}
        if config_map["metadata"].get("ownerReferences") == [owner]:
            return
        map_name = config_map["metadata"]["name"]
        self._call(
            f"making schedule {namespace}/{meta['name']} the owner of ConfigMap {map_name}",
            core.patch_namespaced_config_map,
            map_name,
            namespace,
            {"metadata": {"ownerReferences": [owner]}},
        )

    def _remove_unused(self, batch: Any, core: Any, namespace: str, name: str, current: str) -> Names:
        unused = unused_config_maps(
            self._config_maps(core, namespace, name), self._jobs(batch, namespace, name), current
        )
        for map_name in unused:
            self._delete_config_map(core, namespace, map_name)
        return unused

    def _delete_config_map(self, core: Any, namespace: str, map_name: str) -> None:
        self._call(
            f"deleting ConfigMap {namespace}/{map_name}",
            core.delete_namespaced_config_map,
            map_name,
            namespace,
            missing_ok=True,
            raw=False,
        )


def _check_ours(cronjob: dict[str, Any], name: str) -> None:
    """Refuse a CronJob that is not this runner schedule (someone else's under the same name)."""
    labels = cronjob["metadata"].get("labels") or {}
    if labels.get(MANAGED_BY) != MANAGER or labels.get(SCHEDULE_LABEL) != name:
        namespace = cronjob["metadata"].get("namespace", "")
        raise BackendError(
            f"CronJob {namespace}/{name} is not a runner schedule (it lacks the runner's labels)",
            hint="the runner leaves it alone: rename the job (metadata.name), or delete the CronJob",
        )
