"""The manifest: pure models, parsing with positions, defaults. Imports nothing of ours but errors
(and runner.lazyexports).

The names below are loaded on first use (PEP 562): what needs only the labels (runner.spec.labels, a
docker run's supervisor among them) does not pay for pydantic's models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runner.lazyexports import lazy_exports

if TYPE_CHECKING:
    from runner.spec.loader import LoadedManifest, load_manifest, parse_manifest
    from runner.spec.model import JobManifest

_HOMES = {
    "JobManifest": "runner.spec.model",
    "LoadedManifest": "runner.spec.loader",
    "load_manifest": "runner.spec.loader",
    "parse_manifest": "runner.spec.loader",
}

__all__ = [
    "JobManifest",
    "LoadedManifest",
    "load_manifest",
    "parse_manifest",
]

__getattr__ = lazy_exports(__name__, _HOMES)
