"""The scheduler's systemd unit imports only the installed runner: a runner.py or runner/ in its working
directory (the home directory) cannot shadow it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from runner.render.systemd import isolated, render_scheduler_unit


def exec_start(unit: str) -> str:
    return next(line for line in unit.splitlines() if line.startswith("ExecStart="))


def test_a_module_command_runs_without_the_working_directory_on_sys_path() -> None:
    unit = render_scheduler_unit(["/usr/bin/python3", "-m", "runner.cli.main"], {})
    assert exec_start(unit) == 'ExecStart="/usr/bin/python3" "-P" "-m" "runner.cli.main" "scheduler"'
    assert "WorkingDirectory=%h" in unit.splitlines()


def test_a_console_script_and_an_isolated_command_are_left_alone() -> None:
    assert isolated(["/opt/venv/bin/runner"]) == ["/opt/venv/bin/runner"]
    assert isolated(["/usr/bin/python3", "-I", "-m", "runner.cli.main"]) == [
        "/usr/bin/python3",
        "-I",
        "-m",
        "runner.cli.main",
    ]


def test_the_rendered_command_ignores_a_runner_package_in_its_working_directory(tmp_path: Path) -> None:
    shadow = tmp_path / "runner"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise SystemExit('SHADOWED')\n")
    command = isolated([sys.executable, "-m", "runner.cli.main"])
    done = subprocess.run([*command, "--version"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "SHADOWED" not in done.stderr, done.stderr
    plain = subprocess.run(
        [sys.executable, "-m", "runner.cli.main", "--version"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "SHADOWED" in plain.stderr  # what the unit did before
