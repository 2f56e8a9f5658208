"""The resolved manifest: what the user wrote with every default filled in."""

from __future__ import annotations

import json

import yaml

from runner.spec import JobManifest


def resolved_yaml(manifest: JobManifest) -> str:
    return yaml.safe_dump(manifest.resolved(), sort_keys=False, default_flow_style=False, allow_unicode=True)


def resolved_json(manifest: JobManifest) -> str:
    return json.dumps(manifest.resolved(), indent=2, ensure_ascii=False) + "\n"
