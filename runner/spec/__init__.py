"""The manifest: pure models, parsing with positions, defaults. Imports nothing of ours but errors."""

from runner.spec.loader import LoadedManifest, load_manifest, parse_manifest
from runner.spec.model import JobManifest

__all__ = ["JobManifest", "LoadedManifest", "load_manifest", "parse_manifest"]
