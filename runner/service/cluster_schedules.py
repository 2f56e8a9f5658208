"""Schedules on a cluster: `runner schedule ... --backend kubernetes / --cluster` over CronJobs.

A cluster schedule lives only in the cluster (its CronJob is the truth; nothing is kept on this machine),
so any laptop with the kubeconfig sees and manages the same schedules, as kubectl does. Applying builds and
pushes the job image once, as `runner submit` does, and the CronJob's runs use that image until the next
apply. A triggered run is adopted into the local records at once so `runner logs -f RUN` can follow it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from runner.backends.kubernetes.backend import KubernetesBackend
from runner.backends.kubernetes.cronjobs import Applied, CronJobs
from runner.backends.kubernetes.pure.schedules import ScheduleView
from runner.config import Settings
from runner.records import RunRecords
from runner.service.plan import plan_run
from runner.service.schedules import schedule_of
from runner.spec import load_manifest


class ClusterSchedules:
    def __init__(self, settings: Settings, cronjobs: CronJobs | None = None) -> None:
        self.settings = settings
        self.cronjobs = cronjobs or CronJobs()

    def render(self, path: Path, namespace: str | None) -> list[dict[str, Any]]:
        """What apply would send, with the image's content-hash reference; builds and sends nothing."""
        from runner.images.build import planned_reference

        loaded = load_manifest(path)
        schedule_of(loaded)
        plan = plan_run(loaded, {})
        image = planned_reference(
            plan.manifest, plan.context_dir, registry=self.settings.registry, skip=[self.settings.home]
        )[2]
        namespace = namespace or plan.manifest.spec.kubernetes.namespace or self.cronjobs.namespace()
        return self.cronjobs.objects(replace(plan, image=image), self.settings, namespace)

    def apply(self, path: Path, namespace: str | None, progress: Callable[[str], None]) -> Applied:
        """Build and push the image, then create or replace the CronJob and its ConfigMap."""
        loaded = load_manifest(path)
        schedule_of(loaded)
        backend = KubernetesBackend()
        plan = plan_run(loaded, {})
        backend.check(plan)
        plan = backend.prepare(plan, self.settings, progress)
        return self.cronjobs.apply(plan, self.settings, namespace)

    def list(self, namespace: str | None) -> list[ScheduleView]:
        return self.cronjobs.list(namespace)

    def set_paused(self, name: str, namespace: str | None, *, paused: bool) -> ScheduleView:
        return self.cronjobs.set_suspended(name, namespace, paused)

    def trigger(self, name: str, namespace: str | None, records: RunRecords) -> str:
        """Create a run of the schedule now; it is adopted here so logs, status and cancel find it."""
        run_id = self.cronjobs.trigger(name, namespace)
        KubernetesBackend().adopt(records, self.cronjobs.namespace(namespace), self.settings)
        return run_id

    def delete(self, name: str, namespace: str | None) -> None:
        self.cronjobs.delete(name, namespace)
