"""The agent in a job image without boto3: it collects into s3:// with the standard-library client.

Job images get the runner wheel installed --no-deps, so boto3 is usually missing. The agent runs
here in a process where importing boto3 or botocore fails, against moto's server on loopback; what
it wrote is then read back with boto3 (S3Store), which also shows both clients share one format.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from runner.store import S3Store
from runner.store.collect import read_manifest
from tests.support.s3_server import aws_env, bucket, moto_endpoint, s3  # noqa: F401  (fixtures)

# Runs `python -m runner.agent ARGS` with boto3 and botocore unimportable (as if not installed), and
# reports at exit whether either was imported after all (on stderr, after everything the agent said).
WITHOUT_BOTO3 = """
import atexit, runpy, sys

sys.modules["boto3"] = sys.modules["botocore"] = None  # import raises ImportError, find_spec says None
imported = lambda: any(sys.modules.get(name) is not None for name in ("boto3", "botocore"))
atexit.register(lambda: print("boto3 imported:", imported(), file=sys.stderr))
sys.argv = ["runner.agent", *sys.argv[1:]]
runpy.run_module("runner.agent", run_name="__main__", alter_sys=True)
"""


def run_agent(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_BOTO3, "--", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_agent_collects_into_s3_without_boto3(bucket: str, tmp_path: Path) -> None:  # noqa: F811
    outputs = tmp_path / "outputs"
    env = {
        **os.environ,
        "RUNNER_STORE": f"s3://{bucket}/runs",
        "RUNNER_JOB": "podjob",
        "RUNNER_RUN_ID": "podjob-abc123",
        "RUNNER_OUTPUTS": str(outputs),
    }
    env.pop("RUNNER_ATTEMPT", None)  # as in a cluster pod: the attempt is counted in the store
    script = (
        "echo trained; "
        'mkdir -p "$RUNNER_OUTPUTS/saved_model"; printf w > "$RUNNER_OUTPUTS/saved_model/model.bin"; '
        'echo \'{"accuracy": 0.9}\' > "$RUNNER_OUTPUTS/metrics.json"; exit 3'
    )
    done = run_agent(env, "sh", "-c", script)
    assert done.returncode == 3, done.stderr  # the command's own exit code, after collecting
    assert "collected" in done.stderr
    assert done.stderr.rstrip().endswith("boto3 imported: False")
    store = S3Store(bucket, "runs")
    entries = {entry.path: entry for entry in read_manifest(store, "podjob", "podjob-abc123") or []}
    assert set(entries) == {
        "outputs/saved_model/model.bin",
        "outputs/metrics.json",
        "logs/attempt-1.log",
        "run.json",
        "job.yaml",
    }
    assert store.get_bytes("podjob/podjob-abc123/logs/attempt-1.log") == b"trained\n"
    assert store.get_bytes("podjob/podjob-abc123/outputs/saved_model/model.bin") == b"w"
    assert json.loads(store.get_bytes("podjob/podjob-abc123/outputs/metrics.json")) == {"accuracy": 0.9}
    summary = json.loads(store.get_bytes("podjob/podjob-abc123/run.json"))
    assert (summary["state"], summary["exitCode"]) == ("failed", 3)

    done = run_agent(env, "sh", "-c", 'echo "try $RUNNER_ATTEMPT"')  # a retried pod: the next attempt
    assert done.returncode == 0, done.stderr
    assert store.get_bytes("podjob/podjob-abc123/logs/attempt-2.log") == b"try 2\n"


def test_without_credentials_the_agent_still_runs_and_says_why_nothing_was_saved(
    bucket: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "RUNNER_STORE": f"s3://{bucket}/runs",
        "RUNNER_JOB": "podjob",
        "RUNNER_RUN_ID": "podjob-abc123",
        "RUNNER_ATTEMPT": "1",
        "RUNNER_OUTPUTS": str(tmp_path / "outputs"),
    }
    env.pop("AWS_SECRET_ACCESS_KEY")
    done = run_agent(env, "sh", "-c", "echo ran")
    assert done.returncode != 0
    assert "ran" in done.stdout
    assert "no AWS credentials found" in done.stderr
