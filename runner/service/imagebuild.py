"""`runner build`: a job's image built (or found unchanged) and pushed, with no run and no record.

Apart from RunService so that building an unchanged job pays for what the check needs (the manifest,
its context's content hash, one question to the engine), not for the records, the store and the
backends a run needs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from runner.config import Settings

if TYPE_CHECKING:
    from runner.images.build import BuiltImage


def build_job_image(
    path: Path,
    settings: Settings,
    *,
    registry: str | None,
    push: bool,
    progress: Callable[[str], None],
) -> tuple[BuiltImage, str | None]:
    """Build (or reuse) the image of the job at path; push it when a registry is given (registry, else
    the settings'). The image, and its pushed digest if any."""
    from runner.images.build import ensure_image
    from runner.images.push import push_image
    from runner.spec import load_manifest

    loaded = load_manifest(path)
    registry = registry or settings.registry
    built = ensure_image(
        loaded.manifest,
        loaded.context_dir,
        registry=registry,
        progress=progress,
        skip=[settings.home],
    )
    if not (push and registry):
        return built, None
    return built, push_image(built, progress=progress)
