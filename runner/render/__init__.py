"""Pure renderings of a manifest: the resolved manifest, the Kubernetes objects of a run or a schedule
(runner.render.kubernetes), and the container of a local attempt (runner.render.docker)."""

from runner.render.kubernetes import ClusterTarget, render_job, render_run, render_schedule
from runner.render.kubeyaml import to_yaml
from runner.render.manifest import resolved_json, resolved_yaml

__all__ = [
    "ClusterTarget",
    "render_job",
    "render_run",
    "render_schedule",
    "resolved_json",
    "resolved_yaml",
    "to_yaml",
]
