"""What the tests on the real control plane share: small jobs on the python stand-in, detached submits,
waits on runner's view and the API's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import Result, run_runner, status_of
from tests.support.realcluster import RealKube, wait_until

Runner = Callable[..., Result]
Obj = dict[str, Any]


def small_job(job: Callable[..., Path], image: str, name: str, script: str, **spec: Any) -> Path:
    """A job on the python stand-in running `sh -c script`, on one H100 unless spec says otherwise."""
    spec.setdefault("resources", {"gpu": 1, "gpuType": "H100"})
    return job(name, image={"base": image}, command=["sh", "-c", script], **spec)


def submit_detached(path: Path, *extra: str) -> str:
    result = run_runner("submit", "--backend", "kubernetes", "--detach", *extra, str(path), timeout=600)
    assert result.code == 0, result.output[-3000:]
    return result.stdout.strip()


def wait_for_run(run: str, *states: str, timeout: float = 120) -> dict[str, Any]:
    found: dict[str, Any] = wait_until(
        lambda: doc if (doc := status_of(run))["state"] in states else None,
        timeout,
        f"run {run} to be {'/'.join(states)}",
        pause=0.5,
    )
    return found


def condition(obj: Obj, kind: str) -> Obj | None:
    """The True condition of that type, or None."""
    for item in (obj.get("status") or {}).get("conditions") or []:
        if item.get("type") == kind and item.get("status") == "True":
            found: Obj = item
            return found
    return None


def job_finished(kube: RealKube, name: str, timeout: float = 120) -> Obj:
    """The Job once it has a Complete or Failed condition."""
    found: Obj = wait_until(
        lambda: (
            job
            if (job := kube.job(name)) and (condition(job, "Complete") or condition(job, "Failed"))
            else None
        ),
        timeout,
        f"Job {name} to finish",
        pause=0.5,
    )
    return found
