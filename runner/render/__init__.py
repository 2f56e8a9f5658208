"""Pure renderings of a manifest: the resolved manifest, the Kubernetes objects of a run or a schedule
(runner.render.kubernetes), and the container of a local attempt (runner.render.docker).

The names below are loaded on first use (PEP 562): a docker run's supervisor imports
runner.render.docker, which must not pay for the Kubernetes renderings and pydantic's models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runner.lazyexports import lazy_exports

if TYPE_CHECKING:
    from runner.render.kubernetes import ClusterTarget, render_job, render_run, render_schedule
    from runner.render.kubeyaml import to_yaml
    from runner.render.manifest import resolved_json, resolved_yaml

_HOMES = {
    "ClusterTarget": "runner.render.kubernetes",
    "render_job": "runner.render.kubernetes",
    "render_run": "runner.render.kubernetes",
    "render_schedule": "runner.render.kubernetes",
    "resolved_json": "runner.render.manifest",
    "resolved_yaml": "runner.render.manifest",
    "to_yaml": "runner.render.kubeyaml",
}

__all__ = [
    "ClusterTarget",
    "render_job",
    "render_run",
    "render_schedule",
    "resolved_json",
    "resolved_yaml",
    "to_yaml",
]

__getattr__ = lazy_exports(__name__, _HOMES)
