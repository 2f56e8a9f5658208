"""The docker backend's containers, hardened (issue 11): the job's context cannot shadow the agent, a
pids limit always applies, an out-of-memory kill says so, and env references reach the container but
not the records. Through the real `runner submit --backend docker` on the real engine."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Result, store_dir, submitted_run

Runner = Callable[..., Result]
Job = Callable[..., Path]

pytestmark = pytest.mark.usefixtures("docker_client", "no_leftover_containers")

PIDS_MAX = "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max"


@pytest.fixture
def small_job(job: Job, python_base_image: str) -> Callable[..., Path]:
    def make(name: str, script: str, **spec: Any) -> Path:
        path = job(name, image={"base": python_base_image}, command=["sh", "-c", script], **spec)
        (path.parent / "nonce.txt").write_text(uuid.uuid4().hex)
        return path

    return make


def test_a_runner_package_in_the_context_does_not_shadow_the_agent(
    runner: Runner, small_job: Callable[..., Path], home: Path
) -> None:
    path = small_job("shadowed", "echo job ran; python -c 'import runner; print(runner.__file__)'")
    # the context is the image's working directory: `python -m runner.agent` would import this
    package = path.parent / "runner"
    package.mkdir()
    (package / "__init__.py").write_text("print('SHADOW AGENT RAN')\nraise SystemExit(99)\n")
    (package / "agent.py").write_text("print('SHADOW AGENT RAN')\nraise SystemExit(99)\n")
    result = runner("submit", "--backend", "docker", str(path), timeout=600)
    assert "SHADOW AGENT RAN" not in result.output.split("job ran")[0], result.output[-3000:]
    assert result.code in (0, 99), result.output[-3000:]  # the job's own `import runner` may find it
    run = submitted_run(result)
    assert f"[{run}] job ran" in result.stdout
    assert (store_dir(home, "shadowed", run) / "MANIFEST.json").exists()  # the real agent's work


def test_containers_get_a_pids_limit_the_manifest_can_set(
    runner: Runner, small_job: Callable[..., Path]
) -> None:
    default = runner("submit", "--backend", "docker", str(small_job("pids", PIDS_MAX)), timeout=600)
    assert default.code == 0, default.output[-3000:]
    assert f"[{submitted_run(default)}] 4096" in default.stdout
    # 64 processes at most: a fork loop stops there
    forks = small_job(
        "forks",
        PIDS_MAX + "; n=0; while [ $n -lt 200 ]; do sleep 30 & n=$((n+1)); done 2>/dev/null; "
        "echo started; kill $(jobs -p) 2>/dev/null; exit 0",
        resources={"pids": 64},
    )
    limited = runner("submit", "--backend", "docker", str(forks), timeout=600)
    run = submitted_run(limited)
    assert f"[{run}] 64" in limited.stdout, limited.output[-3000:]
    assert "fork" in limited.output.lower() or "resource temporarily unavailable" in limited.output.lower()


def test_an_out_of_memory_kill_says_so(runner: Runner, small_job: Callable[..., Path], home: Path) -> None:
    path = small_job(
        "hungry",
        "python -c 'chunks = [bytearray(16 * 2**20) for _ in range(64)]; print(\"survived\")'",
        resources={"memory": "64Mi"},
    )
    result = runner("submit", "--backend", "docker", str(path), timeout=600)
    assert result.code == 137, result.output[-3000:]
    run = submitted_run(result)
    assert "runner: killed: out of memory (limit 64Mi); exit code 137" in result.stdout
    log = (store_dir(home, "hungry", run) / "logs" / "attempt-1.log").read_text()
    assert "killed: out of memory (limit 64Mi)" in log
    status = runner("status", run, "-o", "json")
    message = json.loads(status.stdout)["message"]
    assert message.startswith("killed: out of memory (limit 64Mi): "), status.output


def test_env_references_reach_the_container_but_not_the_records(
    runner: Runner, small_job: Callable[..., Path], home: Path, tmp_path: Path
) -> None:
    secret = "s3cr3t-" + uuid.uuid4().hex
    token = tmp_path / "token"
    token.write_text(secret[::-1] + "\n")
    path = small_job(
        "refs",
        'printf "%s|%s" "$API_KEY" "$TOKEN" > "$RUNNER_OUTPUTS/seen"',
        env={"API_KEY": {"fromEnv": "MY_API_KEY"}, "TOKEN": {"fromFile": str(token)}},
    )
    result = runner("submit", "--backend", "docker", str(path), env={"MY_API_KEY": secret}, timeout=600)
    assert result.code == 0, result.output[-3000:]
    run = submitted_run(result)
    assert (store_dir(home, "refs", run) / "outputs" / "seen").read_text() == f"{secret}|{secret[::-1]}"
    for kept in home.rglob("*"):
        if kept.is_file() and not {"logs", "outputs"} & set(kept.parts):
            data = kept.read_bytes()
            assert secret.encode() not in data and secret[::-1].encode() not in data, kept
