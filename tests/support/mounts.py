"""Small real filesystems for tests that need a full, read-only or tiny disk: tmpfs mounts (root only)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """mount(size, name): a fresh tmpfs of that size (e.g. "3m") at tmp_path/name; unmounted afterwards.
    Skips the test where this process may not mount (not root, no mount namespace rights)."""
    mounted: list[Path] = []

    def mount(size: str, name: str = "disk") -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root")
        point = tmp_path / name
        point.mkdir()
        done = _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point))
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)


def remount(point: Path, options: str) -> None:
    """Change a tmpfs's options in place: "ro", "rw", "size=20m"."""
    done = _mount("-o", f"remount,{options}", str(point))
    assert done.returncode == 0, done.stderr


def fill(point: Path) -> Path:
    """Fill the filesystem at point to the last byte with one file; its path (delete it to free the disk)."""
    filler = point / "filler"
    with filler.open("wb", buffering=0) as out:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    out.write(b"\0" * size)
            except OSError:
                continue
    return filler
