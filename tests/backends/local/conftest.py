"""Fixtures of the local backends' tests: tmpfs mounts for full and read-only disks."""

from tests.support.mounts import tmpfs

__all__ = ["tmpfs"]
