"""The systemd user unit that keeps `runner scheduler` running: write it (runner.render.systemd renders
it), then ask the user's manager to start it. Writing is atomic and idempotent; when no user manager
answers (a container, an SSH session without lingering), the unit stays written and the error says
which command finishes the job."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from runner.errors import RunnerError
from runner.render.systemd import UNIT_NAME, render_scheduler_unit

ENABLE_COMMANDS = (
    ("systemctl", "--user", "daemon-reload"),
    ("systemctl", "--user", "enable", "--now", UNIT_NAME),
)
DISABLE_COMMANDS = (
    ("systemctl", "--user", "disable", "--now", UNIT_NAME),
    ("systemctl", "--user", "daemon-reload"),
)
SYSTEMCTL_TIMEOUT = 60


@dataclass(frozen=True)
class UnitChange:
    path: Path
    changed: bool  # whether the file on disk changed


def unit_path(environment: Mapping[str, str]) -> Path:
    """Where systemd looks for the user's own units: $XDG_CONFIG_HOME/systemd/user."""
    config = environment.get("XDG_CONFIG_HOME") or str(
        Path(environment.get("HOME", "~")).expanduser() / ".config"
    )
    return Path(config) / "systemd" / "user" / UNIT_NAME


def runner_command() -> list[str]:
    """The command of this installation's `runner`: the console script beside this Python (a venv's
    bin/), else this Python running the CLI module, so the unit runs exactly what installed it."""
    beside = Path(sys.executable).parent / "runner"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    return [sys.executable, "-m", "runner.cli.main"]


def write_unit(environment: Mapping[str, str], runner: list[str]) -> UnitChange:
    path = unit_path(environment)
    text = render_scheduler_unit(runner, environment)
    if path.exists() and path.read_text() == text:
        return UnitChange(path, changed=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)
    return UnitChange(path, changed=True)


def remove_unit(environment: Mapping[str, str]) -> UnitChange:
    path = unit_path(environment)
    existed = path.exists()
    path.unlink(missing_ok=True)
    return UnitChange(path, changed=existed)


def systemctl(commands: tuple[tuple[str, ...], ...], *, then: str) -> None:
    """Run the commands in order; on the first failure raise an error naming what is left to do."""
    for command in commands:
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=SYSTEMCTL_TIMEOUT, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            reason = str(error)
        else:
            if done.returncode == 0:
                continue
            reason = (done.stderr or done.stdout).strip() or f"exit status {done.returncode}"
        remaining = " && ".join(" ".join(step) for step in commands)
        raise RunnerError(
            f"`{' '.join(command)}` failed: {reason}",
            hint=f"{then}; once a systemd user manager runs here, finish with: {remaining}",
        )
