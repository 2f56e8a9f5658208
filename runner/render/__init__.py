"""Pure renderings of a manifest: the resolved manifest now, Kubernetes objects later."""

from runner.render.manifest import resolved_json, resolved_yaml

__all__ = ["resolved_json", "resolved_yaml"]
