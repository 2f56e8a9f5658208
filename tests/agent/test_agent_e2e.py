"""The agent end to end: `python -m runner.agent`, real processes and signals, a real file:// store."""

from __future__ import annotations

import hashlib
import json
import os
import random
import select
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import process_exists, wait_for

JOB = "mnist"
RUN = "mnist-k3x9q2"
MANIFEST_TEXT = "apiVersion: runner/v1\nkind: Job\nmetadata:\n  name: mnist\n"
TIMEOUT = 60


@dataclass(frozen=True)
class Done:
    code: int
    stdout: bytes
    stderr: str


@dataclass
class Agent:
    root: Path
    env: dict[str, str]

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"

    @property
    def marks(self) -> Path:
        """Where test commands leave markers (not collected)."""
        return self.root / "marks"

    @property
    def run_dir(self) -> Path:
        return self.store / JOB / RUN

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "runner.agent", "--", *args]

    def environment(self, **overrides: str | None) -> dict[str, str]:
        env = {**self.env, **overrides}
        return {key: value for key, value in env.items() if value is not None}

    def run(self, *args: str, **overrides: str | None) -> Done:
        done = subprocess.run(
            self.command(*args),
            env=self.environment(**overrides),
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )
        return Done(done.returncode, done.stdout, done.stderr.decode())

    def start(self, *args: str, **overrides: str | None) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.command(*args),
            env=self.environment(**overrides),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def sh(self, script: str, **overrides: str | None) -> Done:
        return self.run("sh", "-c", script, **overrides)

    def files(self) -> dict[str, dict[str, Any]]:
        data = json.loads((self.run_dir / "MANIFEST.json").read_text())
        assert data["job"] == JOB
        assert data["run"] == RUN
        return {entry["path"]: entry for entry in data["files"]}

    def summary(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.run_dir / "run.json").read_text())
        return data

    def log(self, attempt: int = 1) -> bytes:
        return (self.run_dir / "logs" / f"attempt-{attempt}.log").read_bytes()


@pytest.fixture
def agent(tmp_path: Path) -> Agent:
    env = {key: value for key, value in os.environ.items() if not key.startswith("RUNNER_")}
    (tmp_path / "marks").mkdir()
    manifest = tmp_path / "job.yaml"
    manifest.write_text(MANIFEST_TEXT)
    env.update(
        RUNNER_STORE=(tmp_path / "store").as_uri(),
        RUNNER_JOB=JOB,
        RUNNER_RUN_ID=RUN,
        RUNNER_OUTPUTS=str(tmp_path / "outputs"),
        RUNNER_LOGS=str(tmp_path / "logs"),
        RUNNER_MANIFEST=str(manifest),
        RUNNER_GRACE="1",
        MARKS=str(tmp_path / "marks"),
    )
    return Agent(tmp_path, env)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_manifest_matches_the_store(agent: Agent) -> dict[str, dict[str, Any]]:
    files = agent.files()
    stored = {
        path.relative_to(agent.run_dir).as_posix()
        for path in agent.run_dir.rglob("*")
        if path.is_file() and path.name != "MANIFEST.json"
    }
    assert set(files) == stored
    for key, entry in files.items():
        data = (agent.run_dir / key).read_bytes()
        assert entry["size"] == len(data), key
        assert entry["sha256"] == sha256(data), key
    return files


def test_success_tees_output_collects_everything_and_exits_zero(agent: Agent) -> None:
    done = agent.sh(
        'echo "out $RUNNER_JOB $RUNNER_RUN_ID $RUNNER_ATTEMPT ${RUNNER_STORE:-no-store}"; echo err >&2;'
        'printf "no newline"; echo 42 > "$RUNNER_OUTPUTS/answer.txt";'
        'mkdir -p "$RUNNER_OUTPUTS/model"; printf "weights" > "$RUNNER_OUTPUTS/model/w.bin"'
    )
    assert done.code == 0, done.stderr
    expected = b"out mnist mnist-k3x9q2 1 no-store\nerr\nno newline"
    assert done.stdout == expected
    assert agent.log() == expected
    assert f"run {RUN} succeeded (exit code 0); collected 5 files into" in done.stderr
    files = assert_manifest_matches_the_store(agent)
    assert set(files) == {
        "outputs/answer.txt",
        "outputs/model/w.bin",
        "logs/attempt-1.log",
        "job.yaml",
        "run.json",
    }
    assert files["outputs/model/w.bin"]["sha256"] == sha256(b"weights")
    assert files["logs/attempt-1.log"]["sha256"] == sha256(expected)
    assert (agent.run_dir / "outputs" / "answer.txt").read_text() == "42\n"
    assert (agent.run_dir / "job.yaml").read_text() == MANIFEST_TEXT
    summary = agent.summary()
    assert summary["state"] == "succeeded"
    assert summary["exitCode"] == 0
    assert summary["message"] == "succeeded"
    assert summary["attempt"] == 1
    assert summary["backend"] == "container"
    assert summary["id"] == RUN
    assert summary["job"] == JOB
    assert summary["host"]
    assert summary["started"] <= summary["finished"]
    assert summary["refused"] == []
    assert [attempt["exitCode"] for attempt in summary["attempts"]] == [0]


def test_failure_code_is_propagated_and_collected_as_failed(agent: Agent) -> None:
    # no RUNNER_MANIFEST or RUNNER_LOGS: a placeholder job.yaml and a temporary log directory
    done = agent.sh(
        'echo "attempt $RUNNER_ATTEMPT"; echo partial > "$RUNNER_OUTPUTS/partial.txt"; exit 3',
        RUNNER_ATTEMPT="2",
        RUNNER_MANIFEST=None,
        RUNNER_LOGS=None,
        RUNNER_BACKEND="kubernetes",
    )
    assert done.code == 3, done.stderr
    assert done.stdout == b"attempt 2\n"
    files = assert_manifest_matches_the_store(agent)
    assert set(files) == {"outputs/partial.txt", "logs/attempt-2.log", "job.yaml", "run.json"}
    assert agent.log(2) == b"attempt 2\n"
    assert "not given to the runner agent" in (agent.run_dir / "job.yaml").read_text()
    summary = agent.summary()
    assert summary["state"] == "failed"
    assert summary["exitCode"] == 3
    assert summary["message"] == "exited with code 3"
    assert summary["attempt"] == 2
    assert summary["backend"] == "kubernetes"
    assert summary["attempts"][0]["log"] == "logs/attempt-2.log"


def test_a_command_killed_by_a_signal_exits_128_plus_its_number(agent: Agent) -> None:
    done = agent.sh("echo going; kill -KILL $$")
    assert done.code == 137
    summary = agent.summary()
    assert summary["state"] == "failed"  # nobody asked it to stop: it was not cancelled
    assert summary["message"] == "killed by SIGKILL (exit code 137)"


def test_command_not_found_exits_127_with_the_reason_in_the_log(agent: Agent) -> None:
    done = agent.run("definitely-not-a-command-4821", "--flag")
    assert done.code == 127
    line = b"runner: cannot start 'definitely-not-a-command-4821': No such file or directory\n"
    assert done.stdout == line
    assert agent.log() == line
    summary = agent.summary()
    assert summary["state"] == "failed"
    assert summary["exitCode"] == 127
    assert "could not start" in summary["message"]
    assert_manifest_matches_the_store(agent)


def test_a_command_that_cannot_be_executed_exits_126(agent: Agent) -> None:
    script = agent.root / "not-executable.sh"
    script.write_text("#!/bin/sh\necho never\n")
    done = agent.run(str(script))
    assert done.code == 126
    assert b"Permission denied" in agent.log()


def wait_for_file(path: Path, process: subprocess.Popen[bytes]) -> None:
    def ready() -> bool:
        assert process.poll() is None, f"the agent ended early: {process.communicate()}"
        return path.exists()

    wait_for(ready, 30, f"{path.name} to appear")


TRAPPING = """
trap 'echo "got {name}"; echo {name} > "$MARKS/marker"; exit 0' {name}
echo ready > "$MARKS/ready"
i=0; while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_stop_signals_are_forwarded_and_the_run_is_cancelled(agent: Agent, signum: signal.Signals) -> None:
    name = signum.name.removeprefix("SIG")
    process = agent.start("sh", "-c", TRAPPING.format(name=name))
    wait_for_file(agent.marks / "ready", process)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, stderr  # the command's own code
    assert (agent.marks / "marker").read_text() == f"{name}\n"
    assert stdout == agent.log()
    # the shell may report its `sleep` killed by the same signal in between
    assert agent.log().startswith(f"runner: received {signum.name}; passing it on to the command\n".encode())
    assert agent.log().endswith(f"got {name}\n".encode())
    summary = agent.summary()
    assert summary["state"] == "cancelled"
    assert summary["exitCode"] == 0
    assert summary["message"] == f"cancelled by {signum.name}; the command exited with code 0"
    assert summary["attempts"][0]["ending"] == "cancelled"
    assert_manifest_matches_the_store(agent)


IGNORING = """
trap '' TERM
sleep 300 &
echo $! > "$MARKS/background.pid"
echo "ignoring TERM"
echo ready > "$MARKS/ready"
i=0; while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
"""


def test_a_command_ignoring_sigterm_is_killed_with_its_background_processes(agent: Agent) -> None:
    process = agent.start("sh", "-c", IGNORING)
    wait_for_file(agent.marks / "ready", process)
    background = int((agent.marks / "background.pid").read_text())
    assert process_exists(background)
    process.terminate()
    stdout, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 137, stderr
    wait_for(lambda: not process_exists(background), 10, "the background process to be killed")
    assert stdout == agent.log()
    assert agent.log() == (
        b"ignoring TERM\n"
        b"runner: received SIGTERM; passing it on to the command\n"
        b"runner: the command did not exit within 1s of SIGTERM; killing it\n"
    )
    summary = agent.summary()
    assert summary["state"] == "cancelled"
    assert summary["exitCode"] == 137
    assert summary["message"] == "cancelled by SIGTERM; killed after a grace period of 1s (exit code 137)"
    assert f"run {RUN} cancelled (exit code 137); collected" in stderr.decode()
    assert_manifest_matches_the_store(agent)


def test_background_processes_left_behind_by_a_finished_command_are_killed(agent: Agent) -> None:
    done = agent.sh('sleep 300 & echo $! > "$MARKS/background.pid"; echo done')
    assert done.code == 0
    background = int((agent.marks / "background.pid").read_text())
    wait_for(lambda: not process_exists(background), 10, "the background process to be killed")


def test_output_arrives_live_on_stdout_and_in_the_log(agent: Agent) -> None:
    process = agent.start(
        "sh",
        "-c",
        'printf first; i=0; while [ ! -e "$MARKS/go" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done',
    )
    assert process.stdout is not None
    readable, _, _ = select.select([process.stdout], [], [], 30)
    assert readable, "no output while the command runs"
    assert os.read(process.stdout.fileno(), 100) == b"first"  # no newline, still passed on at once
    log = agent.root / "logs" / "attempt-1.log"
    wait_for(lambda: log.exists() and log.read_bytes() == b"first", 30, "the log to be written")
    (agent.marks / "go").touch()
    process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0


def test_large_output_arrives_intact(agent: Agent) -> None:
    size = 5 * 1024 * 1024
    data = random.Random(7).randbytes(size)
    program = f"import random, sys; sys.stdout.buffer.write(random.Random(7).randbytes({size}))"
    done = agent.run(sys.executable, "-c", program)
    assert done.code == 0, done.stderr
    assert done.stdout == data
    assert agent.log() == data
    entry = assert_manifest_matches_the_store(agent)["logs/attempt-1.log"]
    assert entry == {"path": "logs/attempt-1.log", "size": size, "sha256": sha256(data)}


@pytest.mark.parametrize("missing", [["RUNNER_STORE"], ["RUNNER_RUN_ID"], ["RUNNER_STORE", "RUNNER_RUN_ID"]])
def test_missing_settings_exit_2_with_one_clear_line(agent: Agent, missing: list[str]) -> None:
    done = agent.sh('touch "$MARKS/ran"', **dict.fromkeys(missing))
    assert done.code == 2
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("runner-agent: error: missing setting")
    assert all(name in done.stderr for name in missing)
    assert "Traceback" not in done.stderr
    assert not (agent.marks / "ran").exists()
    assert done.stdout == b""


@pytest.mark.parametrize(
    ("args", "overrides", "message"),
    [
        ((), {}, "no command given; usage: python -m runner.agent -- COMMAND"),
        (("true",), {"RUNNER_STORE": "gs://bucket/runs"}, "RUNNER_STORE: store URL 'gs://bucket/runs'"),
        (("true",), {"RUNNER_GRACE": "soon"}, "RUNNER_GRACE='soon' is not a number of seconds"),
    ],
)
def test_unusable_settings_exit_2(
    agent: Agent, args: tuple[str, ...], overrides: dict[str, str], message: str
) -> None:
    done = agent.run(*args, **overrides)
    assert done.code == 2
    assert done.stderr.startswith(f"runner-agent: error: {message}")
    assert done.stderr.count("\n") == 1


@pytest.mark.parametrize(("script", "code"), [("echo fine", 1), ("echo fine; exit 3", 3)])
def test_a_store_failure_is_reported_and_never_exits_zero(agent: Agent, script: str, code: int) -> None:
    blocker = agent.root / "blocker"
    blocker.write_text("a regular file where the store's directory should be")
    done = agent.sh(script, RUNNER_STORE=str(blocker / "store"))
    assert done.code == code
    assert done.stdout == b"fine\n"  # the job itself ran
    assert "collecting it into" in done.stderr
    assert "Not a directory" in done.stderr
    assert "its outputs and logs were not saved" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_agent_never_imports_the_manifest_stack(agent: Agent) -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *agent.command("true")[1:]],
        env=agent.environment(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    imported = {
        line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")
    }
    assert "runner.agent.main" in imported
    assert "runner.store.collect" in imported
    forbidden = (
        "pydantic",
        "yaml",
        "click",
        "runner.spec",
        "runner.records",
        "runner.backends",
        "runner.cli",
    )
    assert not {name for name in imported if name.startswith(forbidden)}


def _can_unshare() -> bool:
    try:
        done = subprocess.run(
            ["unshare", "--pid", "--fork", "--mount-proc", "true"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


ORPHAN = """
sh -c 'sleep 0.2 & echo $! > "$MARKS/orphan.pid"'
orphan=$(cat "$MARKS/orphan.pid")
i=0; while [ -e /proc/$orphan ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
if [ -e /proc/$orphan ]; then echo "orphan left a zombie"; else echo "orphan reaped"; fi
echo "agent pid $(cat /proc/1/comm)"
"""


@pytest.mark.skipif(not _can_unshare(), reason="needs a new PID namespace (unshare as root)")
def test_as_pid_1_the_agent_reaps_orphans(agent: Agent) -> None:
    done = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", *agent.command("sh", "-c", ORPHAN)],
        env=agent.environment(),
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == b"orphan reaped"
    assert agent.summary()["state"] == "succeeded"


def test_a_closed_stdout_does_not_stop_the_job_or_its_log(agent: Agent) -> None:
    size = 1024 * 1024
    program = f"import sys; sys.stdout.buffer.write(b'x' * {size}); print('end')"
    process = agent.start(sys.executable, "-c", program)
    assert process.stdout is not None
    process.stdout.close()  # nobody reads the agent's stdout any more: its writes fail with EPIPE
    _, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, stderr
    assert agent.log() == b"x" * size + b"end\n"
    assert agent.summary()["state"] == "succeeded"


ESCAPING = """
setsid sh -c 'echo $$ > "$MARKS/escaped.pid"; echo escaped; exec sleep 30' &
while [ ! -s "$MARKS/escaped.pid" ]; do sleep 0.05; done
echo done
"""


def test_a_process_escaping_the_group_with_the_pipe_open_does_not_hold_up_collection(agent: Agent) -> None:
    try:
        done = agent.sh(ESCAPING)
        assert done.code == 0, done.stderr
        assert b"done\n" in agent.log()
        assert agent.summary()["state"] == "succeeded"
        assert_manifest_matches_the_store(agent)
    finally:
        escaped = agent.marks / "escaped.pid"
        if escaped.exists():
            os.kill(int(escaped.read_text()), signal.SIGKILL)


def test_help_lists_the_settings(agent: Agent) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "runner.agent", "--help"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout.startswith("usage: python -m runner.agent -- COMMAND [ARGS...]\n")
    for name in ("RUNNER_STORE", "RUNNER_RUN_ID", "RUNNER_GRACE", "RUNNER_MANIFEST"):
        assert name in done.stdout


def test_an_unwritable_logs_directory_falls_back_to_a_temporary_one(agent: Agent) -> None:
    blocker = agent.root / "blocker"
    blocker.write_text("a regular file where the logs directory should be")
    done = agent.sh("echo logged", RUNNER_LOGS=str(blocker / "logs"))
    assert done.code == 0, done.stderr
    assert "cannot write the log in RUNNER_LOGS" in done.stderr
    assert agent.log() == b"logged\n"
    assert agent.summary()["state"] == "succeeded"


def test_with_an_attached_runner_the_agent_only_runs_and_tees(tmp_path: Path) -> None:
    """RUNNER_STORE=none (the docker backend): output and exit code pass through, nothing is collected."""
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "RUNNER_STORE": "none",
        "RUNNER_JOB": "attached",
        "RUNNER_RUN_ID": "attached-aaaaaa",
        "RUNNER_OUTPUTS": str(tmp_path / "outputs"),
        "RUNNER_LOGS": str(tmp_path / "logs"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "runner.agent", "--", "sh", "-c", "echo attached; exit 4"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (4, "attached\n")
    assert "collected" not in done.stderr
    assert not (tmp_path / "none").exists()
