"""The agent as a cluster pod runs it: collecting into an s3:// store (moto's server on loopback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from runner.store import open_store
from runner.store.collect import read_manifest
from tests.support.s3_server import aws_env, bucket, moto_endpoint, s3  # noqa: F401  (fixtures)


def pod_environment(bucket_name: str, job: str, outputs: Path) -> dict[str, str]:
    """What a cluster pod gives the agent: the s3 store, the run, and no attempt number."""
    env = {
        **os.environ,
        "RUNNER_STORE": f"s3://{bucket_name}/runs",
        "RUNNER_JOB": job,
        "RUNNER_RUN_ID": f"{job}-abc123",
        "RUNNER_OUTPUTS": str(outputs),
    }
    env.pop("RUNNER_ATTEMPT", None)
    return env


def test_the_agent_collects_into_s3(bucket: str, tmp_path: Path) -> None:  # noqa: F811
    env = pod_environment(bucket, "podjob", tmp_path / "outputs")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "runner.agent",
            "--",
            "sh",
            "-c",
            'echo trained; echo w > "$RUNNER_OUTPUTS/model.bin"',
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    store = open_store(f"s3://{bucket}/runs")
    files = {entry.path: entry for entry in read_manifest(store, "podjob", "podjob-abc123") or []}
    assert {"outputs/model.bin", "logs/attempt-1.log", "run.json", "job.yaml"} <= set(files)
    assert store.get_bytes("podjob/podjob-abc123/logs/attempt-1.log") == b"trained\n"


def test_a_retried_pod_is_the_next_attempt_and_earlier_logs_stay_listed(bucket: str, tmp_path: Path) -> None:  # noqa: F811
    """Kubernetes gives a Job's pods no attempt number: the agent counts the attempt logs in the store."""
    env = pod_environment(bucket, "retried", tmp_path / "outputs")
    for expected in (1, 0):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "runner.agent",
                "--",
                "sh",
                "-c",
                f'echo "try $RUNNER_ATTEMPT"; exit {expected}',
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == expected, done.stderr
    store = open_store(f"s3://{bucket}/runs")
    files = {entry.path for entry in read_manifest(store, "retried", "retried-abc123") or []}
    assert {"logs/attempt-1.log", "logs/attempt-2.log"} <= files
    assert store.get_bytes("retried/retried-abc123/logs/attempt-2.log") == b"try 2\n"
