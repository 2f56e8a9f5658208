"""Golden files: rendered text compared with a reviewed copy; RUNNER_REGENERATE_GOLDEN=1 rewrites them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def regenerating() -> bool:
    return os.environ.get("RUNNER_REGENERATE_GOLDEN") == "1"


def check_golden(directory: Path, name: str, text: str) -> None:
    """text must equal directory/name; a missing file fails unless the switch is on, which writes it."""
    path = directory / name
    if regenerating():
        directory.mkdir(exist_ok=True)
        path.write_text(text)
        return
    if not path.is_file():
        pytest.fail(
            f"golden file {path} is missing: write it with RUNNER_REGENERATE_GOLDEN=1, then review it"
        )
    assert text == path.read_text(), (
        f"the rendering differs from {path}; if the change is intended, regenerate with "
        "RUNNER_REGENERATE_GOLDEN=1 and review the diff"
    )
