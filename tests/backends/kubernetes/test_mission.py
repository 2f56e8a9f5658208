"""Chaos on the simulated GPU cluster that the real control plane cannot be made to show: `runner submit`
following its run while every request is answered late and then every watch is cut mid-run.

The mission itself (mnist trained in a container, its model back from the store), a job larger than any
node and a node lost mid-run are tested against the real control plane (tests/realcluster: test_mission,
test_behaviours); their simulator versions were retired.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Result, runner_command, wait_for
from tests.support.sim.fixtures import Cluster

Runner = Callable[..., Result]


@pytest.fixture
def h100_job(job: Callable[..., Path], python_base_image: str, store_secret: str) -> Callable[..., Path]:
    """A small job on the python stand-in asking for H100 GPUs, with the cluster's store settings."""

    def make(name: str, gpus: int = 1, **spec: Any) -> Path:
        resources = {"gpu": gpus, "gpuType": "H100"}
        return job(
            name,
            image={"base": python_base_image},
            command=["sh", "-c", "train"],
            resources=resources,
            **spec,
        )

    return make


def test_submit_follows_its_run_through_a_slow_api_and_dropped_watches(
    h100_job: Callable[..., Path], cluster: Cluster
) -> None:
    """Chaos on the cluster while `runner submit` follows a run: every request answered 200 ms late,
    then every watch cut while the pod runs. The log still arrives whole and the exit code is the job's."""
    cluster.sim.add_nodes(1, gpus=8)
    path = h100_job("steady")
    cluster.runtime.duration = lambda pod: 600.0
    follower = subprocess.Popen(
        runner_command("submit", "--backend", "kubernetes", str(path)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run = wait_for(lambda: _job_named(cluster, "steady"), 300, "the Job")
        cluster.sim.slow_api(0.2)
        cluster.sim.advance(5)
        wait_for(lambda: cluster.server.open_streams > 0, 60, "the log follower's stream")
        cluster.sim.drop_watches(abrupt=True)
        cluster.sim.advance(600)
        out, err = follower.communicate(timeout=300)
    finally:
        if follower.poll() is None:
            follower.kill()
        cluster.sim.slow_api(0)
    assert follower.returncode == 0, err[-3000:]
    run_id = run["metadata"]["name"]
    assert out.count("running on gpu-node-1 for 600s") == 1  # resumed follows skip what was shown
    assert "exiting with code 0" in out, out[-2000:]
    assert f"run {run_id} succeeded" in out + err


def _job_named(cluster: Cluster, job: str) -> dict[str, Any] | None:
    """The Job of the only run of job (its name is the run id, unknown until it exists)."""
    found = [
        item
        for item in cluster.server.list_objects("jobs", cluster.namespace)
        if (item["metadata"].get("labels") or {}).get("runner.dev/job") == job
    ]
    return found[0] if found else None
