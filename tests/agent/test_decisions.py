"""The agent's pure decisions: settings, the command's environment, exit codes, states, run.json."""

from __future__ import annotations

import errno
import re
import signal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runner.agent.outcome import (
    Ended,
    State,
    agent_exit_code,
    describe,
    exit_code,
    final_state,
    run_summary,
    start_failure_code,
)
from runner.agent.settings import (
    AgentSettings,
    SettingsError,
    child_environment,
    parse_command,
    parse_settings,
)

REQUIRED = {"RUNNER_STORE": "file:///store", "RUNNER_JOB": "mnist", "RUNNER_RUN_ID": "mnist-k3x9q2"}


def test_defaults() -> None:
    settings = parse_settings(REQUIRED)
    assert settings == AgentSettings(
        store_url="file:///store", job="mnist", run_id="mnist-k3x9q2", attempt_from_store=True
    )
    assert settings.attempt == 1
    assert settings.outputs == Path("/outputs")
    assert settings.logs is None
    assert settings.manifest is None
    assert settings.grace == 10.0
    assert settings.backend == "container"
    assert settings.log_name == "attempt-1.log"


def test_every_setting() -> None:
    env = {
        **REQUIRED,
        "RUNNER_ATTEMPT": "3",
        "RUNNER_OUTPUTS": "/data/out",
        "RUNNER_LOGS": "/var/log/job",
        "RUNNER_MANIFEST": "/etc/runner/job.yaml",
        "RUNNER_GRACE": "2.5",
        "RUNNER_BACKEND": "kubernetes",
    }
    settings = parse_settings(env)
    assert settings.attempt == 3
    assert settings.log_name == "attempt-3.log"
    assert settings.outputs == Path("/data/out")
    assert settings.logs == Path("/var/log/job")
    assert settings.manifest == Path("/etc/runner/job.yaml")
    assert settings.grace == 2.5
    assert settings.backend == "kubernetes"


def test_empty_optional_settings_mean_their_defaults() -> None:
    env = {**REQUIRED, "RUNNER_ATTEMPT": "", "RUNNER_OUTPUTS": "", "RUNNER_GRACE": " ", "RUNNER_BACKEND": ""}
    assert parse_settings(env) == parse_settings(REQUIRED)


@pytest.mark.parametrize(
    ("absent", "named"),
    [
        (["RUNNER_STORE"], "missing setting RUNNER_STORE: set it"),
        (["RUNNER_RUN_ID"], "missing setting RUNNER_RUN_ID: set it"),
        (["RUNNER_JOB"], "missing setting RUNNER_JOB: set it"),
        (["RUNNER_STORE", "RUNNER_RUN_ID"], "missing settings RUNNER_STORE, RUNNER_RUN_ID: set them"),
    ],
)
def test_missing_required_settings_are_named_together(absent: list[str], named: str) -> None:
    env = {key: value for key, value in REQUIRED.items() if key not in absent}
    with pytest.raises(SettingsError, match=named):
        parse_settings(env)
    with pytest.raises(SettingsError, match=named):
        parse_settings({**env, **dict.fromkeys(absent, "  ")})  # blank is missing too


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RUNNER_ATTEMPT", "0", "RUNNER_ATTEMPT='0' is not an attempt number"),
        ("RUNNER_ATTEMPT", "two", "RUNNER_ATTEMPT='two' is not an attempt number"),
        ("RUNNER_GRACE", "-1", "RUNNER_GRACE='-1' is not a number of seconds"),
        ("RUNNER_GRACE", "soon", "RUNNER_GRACE='soon' is not a number of seconds"),
        ("RUNNER_GRACE", "nan", "RUNNER_GRACE='nan' is not a number of seconds"),
        ("RUNNER_GRACE", "inf", "RUNNER_GRACE='inf' is not a number of seconds"),
        ("RUNNER_JOB", "a/b", "RUNNER_JOB/RUNNER_RUN_ID: refusing job name 'a/b'"),
        ("RUNNER_RUN_ID", "..", "RUNNER_JOB/RUNNER_RUN_ID: refusing unsafe path"),
    ],
)
def test_malformed_settings(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        parse_settings({**REQUIRED, name: value})


def test_command_after_an_optional_double_dash() -> None:
    assert parse_command(["--", "python", "train.py", "--epochs", "5"]) == [
        "python",
        "train.py",
        "--epochs",
        "5",
    ]
    assert parse_command(["python", "--", "x"]) == ["python", "--", "x"]
    assert parse_command(["--", "--"]) == ["--"]
    for empty in ([], ["--"]):
        with pytest.raises(
            SettingsError, match=re.escape("no command given; usage: python -m runner.agent --")
        ):
            parse_command(empty)


def test_the_command_sees_the_runs_variables_but_not_the_agents_settings() -> None:
    env = {
        **REQUIRED,
        "RUNNER_LOGS": "/logs",
        "RUNNER_MANIFEST": "/m.yaml",
        "RUNNER_GRACE": "3",
        "RUNNER_BACKEND": "kubernetes",
        "RUNNER_INPUT_DATA": "/data",
        "PATH": "/usr/bin",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    settings = parse_settings({**env, "RUNNER_OUTPUTS": "/out", "RUNNER_ATTEMPT": "2"})
    child = child_environment(env, settings)
    assert child == {
        "RUNNER_JOB": "mnist",
        "RUNNER_RUN_ID": "mnist-k3x9q2",
        "RUNNER_ATTEMPT": "2",
        "RUNNER_OUTPUTS": "/out",
        "RUNNER_INPUT_DATA": "/data",
        "PATH": "/usr/bin",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONUNBUFFERED": "1",
    }
    assert child_environment({"PYTHONUNBUFFERED": ""}, settings)["PYTHONUNBUFFERED"] == ""


@given(st.integers(min_value=0, max_value=255))
def test_exit_codes_pass_through(code: int) -> None:
    assert exit_code(code) == code


@given(st.sampled_from(list(signal.Signals)))
def test_death_by_signal_is_128_plus_its_number(signum: signal.Signals) -> None:
    assert exit_code(-signum.value) == 128 + signum.value


def test_start_failures_exit_as_a_shell_would() -> None:
    assert start_failure_code(FileNotFoundError(errno.ENOENT, "No such file or directory")) == 127
    assert start_failure_code(NotADirectoryError(errno.ENOTDIR, "Not a directory")) == 127
    assert start_failure_code(PermissionError(errno.EACCES, "Permission denied")) == 126
    assert start_failure_code(OSError(errno.ENOEXEC, "Exec format error")) == 126


def ended(code: int, stopped_by: int | None = None, *, killed: bool = False, why: str | None = None) -> Ended:
    return Ended(code, 100.0, 160.5, stopped_by=stopped_by, killed=killed, start_error=why)


@pytest.mark.parametrize(
    ("how", "state", "message"),
    [
        (ended(0), State.SUCCEEDED, "succeeded"),
        (ended(3), State.FAILED, "exited with code 3"),
        (ended(137), State.FAILED, "killed by SIGKILL (exit code 137)"),
        (ended(0, signal.SIGTERM), State.CANCELLED, "cancelled by SIGTERM; the command exited with code 0"),
        (ended(130, signal.SIGINT), State.CANCELLED, "cancelled by SIGINT; the command exited with code 130"),
        (
            ended(137, signal.SIGTERM, killed=True),
            State.CANCELLED,
            "cancelled by SIGTERM; killed after a grace period of 1.5s (exit code 137)",
        ),
        (
            ended(127, why="'nope': No such file or directory"),
            State.FAILED,
            "could not start: 'nope': No such file or directory (exit code 127)",
        ),
    ],
)
def test_state_and_message_from_how_it_ended(how: Ended, state: State, message: str) -> None:
    assert final_state(how) is state
    assert describe(how, 1.5) == message


def test_run_json() -> None:
    settings = parse_settings({**REQUIRED, "RUNNER_ATTEMPT": "2", "RUNNER_BACKEND": "kubernetes"})
    summary = run_summary(settings, ended(137, signal.SIGTERM, killed=True), host="node-7")
    assert summary == {
        "schemaVersion": 2,
        "id": "mnist-k3x9q2",
        "job": "mnist",
        "backend": "kubernetes",
        "state": "cancelled",
        "message": "cancelled by SIGTERM; killed after a grace period of 10s (exit code 137)",
        "exitCode": 137,
        "attempt": 2,
        "started": "1970-01-01T00:01:40.000000Z",
        "finished": "1970-01-01T00:02:40.500000Z",
        "host": "node-7",
        "attempts": [
            {
                "number": 2,
                "started": "1970-01-01T00:01:40.000000Z",
                "finished": "1970-01-01T00:02:40.500000Z",
                "exitCode": 137,
                "ending": "cancelled",
                "log": "logs/attempt-2.log",
            }
        ],
    }
    assert run_summary(settings, ended(3), host="h")["attempts"][0]["ending"] == "exited"


@pytest.mark.parametrize(
    ("code", "collected", "expected"),
    [(0, True, 0), (3, True, 3), (0, False, 1), (3, False, 3), (137, False, 137)],
)
def test_a_run_whose_artifacts_were_lost_never_exits_zero(code: int, collected: bool, expected: int) -> None:
    assert agent_exit_code(code, collected=collected) == expected
