"""Pure renderings of a manifest: the resolved manifest, and the Kubernetes objects of a run."""

from runner.render.kubernetes import render_job
from runner.render.kubeyaml import to_yaml
from runner.render.manifest import resolved_json, resolved_yaml

__all__ = ["render_job", "resolved_json", "resolved_yaml", "to_yaml"]
