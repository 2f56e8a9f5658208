"""A cluster's schedules: ClusterSchedules, the Schedules of one namespace's CronJobs.

A cluster schedule lives only in the cluster (its CronJob is the truth; nothing is kept on this machine),
so any laptop with the kubeconfig sees and manages the same schedules, as kubectl does. Applying builds and
pushes the job image once, as `runner submit` does, and the CronJob's runs use that image until the next
apply. A triggered run is adopted into the local records at once so `runner logs -f RUN` can follow it.
The CronJobs themselves are runner.backends.kubernetes.cronjobs'.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from runner.backends.kubernetes.backend import KubernetesBackend
from runner.backends.kubernetes.cronjobs import CronJobs
from runner.config import Settings
from runner.errors import UserError
from runner.records import RunRecord, RunRecords
from runner.records.schedule_view import ScheduleView
from runner.records.schedules import SlotRecord
from runner.service.plan import plan_run
from runner.service.schedules.base import AppliedSchedule, ApplyResult, require_schedule
from runner.spec import load_manifest


class ClusterSchedules:
    """The Schedules of a namespace (None: the kubeconfig context's; apply also honours the manifest's
    spec.kubernetes.namespace). progress hears what apply's image build and push say."""

    def __init__(
        self,
        settings: Settings,
        namespace: str | None = None,
        *,
        cronjobs: CronJobs | None = None,
        progress: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.settings = settings
        self.namespace = namespace
        self.cronjobs = cronjobs or CronJobs()
        self.progress = progress

    def render(self, path: Path) -> list[dict[str, Any]]:
        """What apply would send, with the image's content-hash reference; builds and sends nothing."""
        from runner.images.build import planned_reference

        loaded = load_manifest(path)
        require_schedule(loaded)
        plan = plan_run(loaded, {})
        image = planned_reference(
            plan.manifest, plan.context_dir, registry=self.settings.registry, skip=[self.settings.home]
        )[2]
        namespace = self.namespace or plan.manifest.spec.kubernetes.namespace or self.cronjobs.namespace()
        return self.cronjobs.objects(replace(plan, image=image), self.settings, namespace)

    def apply(self, path: Path, backend: str | None = None) -> AppliedSchedule:
        """Build and push the image, then create or replace the CronJob and its ConfigMap."""
        if backend not in (None, "kubernetes"):
            raise UserError(f"schedules on a cluster run on the kubernetes backend, not {backend!r}")
        loaded = load_manifest(path)
        require_schedule(loaded)
        kubernetes = KubernetesBackend()
        plan = plan_run(loaded, {})
        kubernetes.check(plan, self.settings)
        plan = kubernetes.prepare(plan, self.settings, self.progress)
        applied = self.cronjobs.apply(plan, self.settings, self.namespace)
        return AppliedSchedule(
            name=applied.name,
            result=ApplyResult.CREATED if applied.created else ApplyResult.CONFIGURED,
            backend="kubernetes",
            namespace=applied.namespace,
        )

    def list_schedules(self) -> list[ScheduleView]:
        return self.cronjobs.list(self.namespace)

    def get(self, name: str) -> ScheduleView:
        return self.cronjobs.get(name, self.namespace)

    def pause(self, name: str) -> ScheduleView:
        """Suspend the CronJob: the controller starts no Job until resume."""
        return self.cronjobs.set_suspended(name, self.namespace, True)

    def resume(self, name: str) -> ScheduleView:
        """Lift the CronJob's suspend. Kubernetes decides what follows: the latest slot missed while
        paused still starts at once if it is within the startingDeadlineSeconds."""
        return self.cronjobs.set_suspended(name, self.namespace, False)

    def trigger(self, name: str) -> RunRecord:
        """Create a run of the schedule now; it is adopted here so logs, status and cancel find it."""
        run_id = self.cronjobs.trigger(name, self.namespace)
        records = RunRecords(self.settings.database)
        KubernetesBackend(self.cronjobs.context).adopt(
            records, self.cronjobs.namespace(self.namespace), self.settings
        )
        return records.get(run_id)

    def delete(self, name: str) -> None:
        """Delete the CronJob; its Jobs and ConfigMaps follow it by garbage collection."""
        self.cronjobs.delete(name, self.namespace)

    def history(self, name: str, limit: int | None = None) -> list[SlotRecord]:
        """A cluster keeps no slot history: a UserError pointing at the schedule's Jobs instead."""
        raise UserError(
            f"schedule {name!r} is a CronJob: the cluster keeps no history of its slots",
            hint=f"its runs are Jobs: `kubectl get jobs -l runner.dev/schedule={name}`, "
            "or `runner list --cluster`",
        )
