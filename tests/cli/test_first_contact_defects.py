"""Issue 14's remaining defects, each through the real command."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Result, runner_command, store_dir, submitted_run

Runner = Callable[..., Result]


# ---------------------------------------------------------------- 3: requirements the process backend ignores


def test_process_submit_says_which_requirements_are_not_installed_and_how(
    runner: Runner, job: Callable[..., Path]
) -> None:
    path = job("needy", image={"requirements": "requirements.txt", "apt": ["libgl1"]})
    (path.parent / "requirements.txt").write_text(
        "# what the job needs\nclick\nno-such-package-runner-test>=1.0  # missing\n--index-url x\n"
    )
    result = runner("submit", str(path))
    assert result.code == 0, result.output
    warning = next(line for line in result.stderr.splitlines() if "spec.image.requirements" in line)
    assert "no-such-package-runner-test>=1.0" in warning
    assert "click" not in warning.split("this environment:")[1]
    assert f"-m pip install -r {path.parent / 'requirements.txt'}" in warning
    assert "spec.image.apt (libgl1)" in result.stderr


def test_process_submit_is_quiet_when_the_requirements_are_installed(
    runner: Runner, job: Callable[..., Path]
) -> None:
    result = runner("submit", str(job("fine", image={"requirements": ["click>=1", "pyyaml"]})))
    assert result.code == 0, result.output
    assert "warning" not in result.stderr, result.stderr
    listed = runner("submit", str(job("needy", image={"requirements": ["click<1"]})))
    assert "not in this environment: click<1" in listed.stderr and "-m pip install 'click<1'" in listed.stderr


# ---------------------------------------------------------------- 14: run.json, one schema


def _run_json(home: Path, job: str, run: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((store_dir(home, job, run) / "run.json").read_text())
    return document


def _snake_keys(value: object) -> list[str]:
    if isinstance(value, dict):
        own = [key for key in value if "_" in key and key != "labels"]
        return own + [k for item in value.values() for k in _snake_keys(item)]
    if isinstance(value, list):
        return [k for item in value for k in _snake_keys(item)]
    return []


def test_run_json_has_a_schema_version_camel_case_and_rfc3339_times(
    runner: Runner, job: Callable[..., Path], home: Path
) -> None:
    result = runner("submit", str(job("flaky", command=["sh", "-c", "exit 0"])))
    assert result.code == 0, result.output
    run = submitted_run(result)
    document = _run_json(home, "flaky", run)
    assert document["schemaVersion"] == 2
    assert _snake_keys(document) == [], document
    assert document["exitCode"] == 0 and document["attempts"][0]["exitCode"] == 0
    for when in (
        document["created"],
        document["started"],
        document["finished"],
        document["attempts"][0]["started"],
    ):
        assert isinstance(when, str) and when.endswith("Z"), document
        assert datetime.fromisoformat(when).tzinfo is not None
    assert document["started"] <= document["finished"]


def test_status_and_retention_read_an_older_run_json(
    runner: Runner, job: Callable[..., Path], home: Path
) -> None:
    path = job("kept", retention={"keepLast": 1})
    first = submitted_run(runner("submit", str(path)))
    old = _run_json(home, "kept", first)  # as version 1 wrote it: epoch seconds, snake-case attempts
    old.pop("schemaVersion")
    for key in ("created", "started", "finished"):
        old[key] = datetime.fromisoformat(old[key]).timestamp()
    old["attempts"] = [{"number": 1, "started": 1.0, "finished": 2.0, "exit_code": 0, "ending": "exited"}]
    (store_dir(home, "kept", first) / "run.json").write_text(json.dumps(old))
    shown = runner("status", first, "-o", "json")
    assert shown.code == 0, shown.output
    second = submitted_run(runner("submit", str(path)))
    assert not (store_dir(home, "kept", first) / "MANIFEST.json").exists()  # the older one expired
    assert (store_dir(home, "kept", second) / "MANIFEST.json").exists()
    third = submitted_run(runner("submit", str(path)))  # two version-2 files ordered by their times
    assert not (store_dir(home, "kept", second) / "MANIFEST.json").exists()
    assert (store_dir(home, "kept", third) / "MANIFEST.json").exists()


def test_run_json_times_read_either_version() -> None:
    from runner.store import runjson
    from runner.timestamps import seconds

    assert seconds("1970-01-01T00:01:40.500000Z") == 100.5
    assert seconds("1970-01-01T09:01:40+09:00") == 100.0
    assert seconds(100.5) == 100.5
    for bad in (True, "yesterday", "1970-01-01T00:01:40", float("nan"), None):
        assert seconds(bad) is None
    upgraded = runjson.upgraded({"finished": 100.0, "attempts": [{"exit_code": 3, "started": 1}]})
    assert upgraded["schemaVersion"] == 2 and upgraded["finished"] == "1970-01-01T00:01:40.000000Z"
    assert upgraded["attempts"] == [{"exitCode": 3, "started": "1970-01-01T00:00:01.000000Z"}]


# ---------------------------------------------------------------- 18: the process backend is no sandbox


def test_files_written_outside_the_outputs_are_said(
    runner: Runner, job: Callable[..., Path], home: Path
) -> None:
    script = 'echo x > "$RUNNER_OUTPUTS/../outside.txt"; echo m > model.keras; echo ok > "$RUNNER_OUTPUTS/ok"'
    result = runner("submit", str(job("leaky", command=["sh", "-c", script])))
    assert result.code == 0, result.output
    run = submitted_run(result)
    said = result.stderr.split("succeeded", 1)[1]
    assert "wrote outside its outputs" in said and "outside.txt" in said and "context/model.keras" in said, (
        said
    )
    assert "$RUNNER_OUTPUTS" in said
    assert _run_json(home, "leaky", run)["outsideOutputs"] == ["outside.txt", "context/model.keras"]
    assert "outside.txt" in runner("status", run).stdout
    quiet = runner("submit", str(job("tidy", command=["sh", "-c", 'echo ok > "$RUNNER_OUTPUTS/ok"'])))
    assert quiet.code == 0 and "outside its outputs" not in quiet.stderr, quiet.output


# ---------------------------------------------------------------- 16: YAML syntax in plain words

HEAD = "apiVersion: runner/v1\nkind: Job\nmetadata:\n  name: demo\n"


@pytest.mark.parametrize(
    ("body", "position", "said"),
    [
        ("spec:\n\tcommand: [x]\n", "6:1", "a tab character: YAML indents with spaces only"),
        ("spec:\n    command: [x]\n  retries: 1\n", "7:3", "indented 2 space(s), but the lines above"),
        ("spec:\n  command:\n  - x\n - y\n", "8:2", "bad indentation"),
        ("spec:\n  command:\n    - x\n    retries: 1\n", "8:5", "is not an item (`- ...`)"),
        ("spec:\n  command: [x\n  retries: 1\n", "7:10", "the list in [brackets] that starts at line 6"),
        (
            'spec:\n  command: ["x]\n',
            "7:1",
            "the quoted text that starts at line 6",
        ),
        ("spec:\n  command: [x]\n  retries 1\n  timeout: 1h\n", "8:3", "line 7 is not `key: value`"),
    ],
)
def test_yaml_syntax_errors_are_said_in_plain_words(
    runner: Runner, tmp_path: Path, body: str, position: str, said: str
) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(HEAD + body)
    result = runner("validate", str(path))
    assert result.code == 2, result.output
    assert f"job.yaml:{position}: " in result.stderr, result.stderr
    assert said in result.stderr, result.stderr
    assert "<block" not in result.stderr and "expected <" not in result.stderr


# ---------------------------------------------------------------- 9: bytes that are not UTF-8


def test_logs_keep_the_bytes_for_a_pipe_and_escape_them_for_a_terminal(
    runner: Runner, job: Callable[..., Path], home: Path
) -> None:
    path = job("bytes", command=["sh", "-c", r"printf 'a\377b \303\251\n'"])
    done = subprocess.run(runner_command("submit", str(path)), capture_output=True, check=False, timeout=120)
    assert done.returncode == 0, done
    run = submitted_run(Result(0, "", done.stderr.decode()))
    piped = subprocess.run(runner_command("logs", run), capture_output=True, check=False, timeout=60)
    assert piped.stdout == b"a\xffb \xc3\xa9\n"
    leader, follower = pty.openpty()
    shown = subprocess.run(
        runner_command("logs", run), stdout=follower, stderr=subprocess.PIPE, timeout=60, check=False
    )
    os.close(follower)
    output = os.read(leader, 4096)
    os.close(leader)
    assert shown.returncode == 0, shown
    assert output.replace(b"\r\n", b"\n") == "a\\xffb é\n".encode(), output


# ---------------------------------------------------------------- 19: submit latency


def _boot_time() -> float:
    """When this machine booted, to 10 ms (/proc/uptime; /proc/stat's btime is whole seconds)."""
    return time.time() - float(Path("/proc/uptime").read_text().split()[0])


def test_submit_starts_the_supervisor_before_reading_the_manifest(
    runner: Runner, job: Callable[..., Path], home: Path
) -> None:
    """The supervisor's interpreter starts while the command validates (bench/startup.py measures the
    whole): it is older than the run's record, made once the manifest is valid."""
    result = runner("submit", str(job("quick")))
    assert result.code == 0, result.output
    from runner.records import RunRecords

    records = RunRecords(home / "runs.db")
    record = records.get(submitted_run(result))
    records.close()
    assert record.supervisor_start is not None
    started = _boot_time() + int(record.supervisor_start) / os.sysconf("SC_CLK_TCK")
    assert started < record.created - 0.02, (started, record.created)
    # and one that was not needed (an invalid manifest) is gone when the command is
    invalid = job("broken", retries="two")
    assert runner("submit", str(invalid)).code == 2
    waiting = subprocess.run(["pgrep", "-f", "--", "--await"], capture_output=True, text=True, check=False)
    for pid in waiting.stdout.split():
        environ = Path(f"/proc/{pid}/environ").read_bytes() if Path(f"/proc/{pid}").exists() else b""
        assert f"RUNNER_HOME={home}".encode() not in environ.split(b"\0"), pid
