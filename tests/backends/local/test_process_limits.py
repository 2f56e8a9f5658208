"""The process backend does not enforce spec.resources.memory or cpu (cgroup v1, not delegated; RLIMIT_AS
would kill healthy TensorFlow jobs): `runner submit` says so instead of failing silently."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import Result

Runner = Callable[..., Result]


def test_submit_warns_that_memory_is_not_enforced(
    runner: Runner, job: Callable[..., Path], home: Path
) -> None:
    limited = runner("submit", str(job("limited", resources={"memory": "128Mi", "cpu": "500m"})))
    assert limited.code == 0, limited.output
    assert (
        "warning: the process backend does not enforce spec.resources memory (128Mi) and cpu (500m): the job "
        "may use all of this machine's; --backend docker enforces them"
    ) in limited.stderr
    plain = runner("submit", str(job("plain")))
    assert plain.code == 0 and "warning" not in plain.stderr, plain.output
