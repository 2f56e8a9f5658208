"""Where a cluster run goes: its namespace, and the one ClusterTarget every cluster render goes through."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runner.backends.base import RunPlan
from runner.backends.kubernetes.client import default_namespace
from runner.config import Settings
from runner.errors import BackendError

if TYPE_CHECKING:
    from runner.render.kubernetes import ClusterTarget
    from runner.spec import JobManifest


def cluster_namespace(manifest: JobManifest, namespace: str | None, context: str | None) -> str:
    """Where a manifest's objects go: namespace (-n) if given, else the manifest's
    spec.kubernetes.namespace, else the kubeconfig context's (as kubectl chooses it)."""
    return namespace or manifest.spec.kubernetes.namespace or default_namespace(context)


def target_for(
    plan: RunPlan,
    settings: Settings,
    namespace: str | None = None,
    *,
    context: str | None = None,
    what: str = "the kubernetes backend launches",
) -> ClusterTarget:
    """The cluster target of a prepared plan (its image set) under the settings, its namespace resolved
    by cluster_namespace. The one place a target is made: `runner submit` (launch), `runner render
    --kubernetes` and `runner schedule apply [--dry-run]` all render through it, so a dry run prints
    what is sent. Raises UserError for a target that cannot run on a cluster (ClusterTarget)."""
    from runner.backends.kubernetes.inputs import planned_inputs
    from runner.render.kubernetes import ClusterTarget

    if plan.image is None:
        raise BackendError(
            f"{what} only a prepared plan (its image is pushed first)",
            hint="prepare it with KubernetesBackend.prepare",
        )
    return ClusterTarget(
        image=plan.image,
        store_url=settings.store_url,
        namespace=cluster_namespace(plan.manifest, namespace, context),
        store_secret=settings.store_secret,
        inputs=planned_inputs(plan, settings.store_url),  # local inputs: their prefix in the store
        grace=settings.grace_seconds,
    )
