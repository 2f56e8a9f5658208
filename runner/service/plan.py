"""Planning a run: pure decisions from a loaded manifest to a RunPlan."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlparse

from runner.backends import RunPlan
from runner.errors import UserError
from runner.render import resolved_yaml
from runner.spec import LoadedManifest
from runner.spec.labels import run_labels
from runner.spec.model import check_input_source, input_kind, new_run_id

__all__ = ["new_run_id", "parse_overrides", "plan_run", "resolve_source"]


def parse_overrides(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """--input NAME=SOURCE pairs."""
    overrides: dict[str, str] = {}
    for pair in pairs:
        name, sep, source = pair.partition("=")
        if not sep or not name or not source:
            raise UserError(f"--input {pair!r}: expected NAME=SOURCE, e.g. --input cells=/data/malaria")
        overrides[name] = source
    return overrides


def resolve_source(source: str, base: Path) -> str:
    """A local source as an absolute path (relative to the manifest's directory); URLs (s3://, pvc://)
    stay as they are."""
    if input_kind(source) != "local":
        return source
    parsed = urlparse(source)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    if parsed.scheme in ("", "local"):
        return str((base / source).absolute())
    return source


def plan_run(
    loaded: LoadedManifest,
    overrides: dict[str, str],
    run_id: str | None = None,
    extra_labels: Mapping[str, str] | None = None,
) -> RunPlan:
    """The run of a loaded manifest. ``extra_labels`` are the runner's own (a schedule's name, say):
    they join the job and run labels and, like them, win over the manifest's."""
    manifest = loaded.manifest
    names = [item.name for item in manifest.spec.inputs]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        known = ", ".join(names) or "none"
        raise UserError(f"--input {unknown[0]!r}: the manifest has no such input (its inputs: {known})")
    inputs = {}
    for item in manifest.spec.inputs:
        source = overrides.get(item.name)
        if source:
            try:
                check_input_source(source)
            except ValueError as problem:
                raise UserError(
                    f"--input {item.name}={source}: {problem}",
                    hint="a path, s3://BUCKET/PREFIX or pvc://CLAIM[/SUBPATH]",
                ) from None
        inputs[item.name] = (
            resolve_source(source, Path.cwd()) if source else resolve_source(item.source, loaded.base_dir)
        )
    run_id = run_id or new_run_id(manifest.name)
    return RunPlan(
        run_id=run_id,
        manifest=manifest,
        manifest_text=resolved_yaml(manifest),
        context_dir=loaded.context_dir,
        inputs=inputs,
        labels={**run_labels(manifest.metadata.labels, manifest.name, run_id), **(extra_labels or {})},
    )
