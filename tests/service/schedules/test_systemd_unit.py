"""`runner scheduler install|uninstall`: the systemd user unit is written atomically, passes systemd's own
checker, carries settings but no credentials, and systemctl is driven (or its failure explained)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.render.systemd import render_scheduler_unit, systemd_quote
from tests.conftest import Result

Runner = Callable[..., Result]


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(path))
    return path


def fake_systemctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exit_code: int) -> Path:
    """A systemctl stand-in on PATH that logs its arguments: this machine has no systemd user manager."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "systemctl.calls"
    script = bin_dir / "systemctl"
    message = "Failed to connect to bus: No medium found" if exit_code else ""
    script.write_text(f'#!/bin/sh\necho "$*" >> {calls}\necho "{message}" >&2\nexit {exit_code}\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return calls


def test_quoting_keeps_specifiers_and_variables_literal() -> None:
    assert systemd_quote('a "b" 50% \\ $X') == '"a \\"b\\" 50%% \\\\ $X"'
    assert systemd_quote("$HOME/x", command=True) == '"$$HOME/x"'


def test_the_unit_carries_settings_but_never_credentials() -> None:
    unit = render_scheduler_unit(
        ["/opt/runner/bin/runner"],
        {
            "RUNNER_HOME": "/data/runner",
            "RUNNER_STORE": "s3://models/nightly",
            "AWS_SECRET_ACCESS_KEY": "do-not-copy",
            "AWS_ACCESS_KEY_ID": "AKIA",
        },
    )
    assert 'ExecStart="/opt/runner/bin/runner" "scheduler"' in unit
    assert 'Environment="RUNNER_HOME=/data/runner"' in unit
    assert 'Environment="RUNNER_STORE=s3://models/nightly"' in unit
    assert "do-not-copy" not in unit and "AKIA" not in unit
    assert "EnvironmentFile=-%h/.config/runner/scheduler.env" in unit
    assert "KillMode=process" in unit  # stopping the scheduler must not kill the runs it started
    assert "WantedBy=default.target" in unit


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze is missing (Debian's systemd package provides it)")
        pytest.skip("systemd-analyze is not installed")
    unit = tmp_path / "runner-scheduler.service"
    unit.write_text(
        render_scheduler_unit([sys.executable, "-m", "runner.cli.main"], {"RUNNER_HOME": "/srv/r 100%"})
    )
    checked = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    assert "runner-scheduler.service" not in checked.stderr, checked.stderr  # no warnings about our file


def test_install_writes_the_unit_and_starts_it(
    runner: Runner, home: Path, config_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fake_systemctl(tmp_path, monkeypatch, exit_code=0)
    result = runner("scheduler", "install")
    assert result.code == 0, result.output
    unit = config_home / "systemd" / "user" / "runner-scheduler.service"
    assert f'Environment="RUNNER_HOME={home}"' in unit.read_text()
    assert calls.read_text().splitlines() == [
        "--user daemon-reload",
        "--user enable --now runner-scheduler.service",
    ]
    assert f"wrote: {unit}" in result.stdout

    again = runner("scheduler", "install", "--no-start")
    assert again.code == 0 and f"unchanged: {unit}" in again.stdout

    removed = runner("scheduler", "uninstall")
    assert removed.code == 0, removed.output
    assert not unit.exists()
    assert calls.read_text().splitlines()[-2:] == [
        "--user disable --now runner-scheduler.service",
        "--user daemon-reload",
    ]


def test_without_a_user_manager_the_unit_stays_and_the_error_says_what_to_run(
    runner: Runner, home: Path, config_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_systemctl(tmp_path, monkeypatch, exit_code=1)
    result = runner("scheduler", "install")
    assert result.code == 1
    assert "Traceback" not in result.output
    assert "error: `systemctl --user daemon-reload` failed: Failed to connect to bus" in result.stderr
    assert "systemctl --user enable --now runner-scheduler.service" in result.stderr
    assert (config_home / "systemd" / "user" / "runner-scheduler.service").is_file()
    assert not list((config_home / "systemd" / "user").glob("*.partial"))


def test_dry_run_prints_the_unit_and_writes_nothing(runner: Runner, home: Path, config_home: Path) -> None:
    result = runner("scheduler", "install", "--dry-run")
    assert result.code == 0, result.output
    assert result.stdout.startswith("[Unit]\n") and "ExecStart=" in result.stdout
    assert not config_home.exists()
