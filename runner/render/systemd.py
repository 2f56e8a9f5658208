"""The systemd user unit that keeps `runner scheduler` running on a workstation or a GPU box.

Pure: it returns the unit's text; `runner scheduler install` writes it and asks systemctl to start it.

Two choices worth knowing:
- `KillMode=process`: a scheduled run is owned by a detached supervisor, not by the scheduler. With
  systemd's default (the whole control group) stopping or restarting the scheduler would kill every
  run it started; with `process` only the scheduler itself stops, and runs finish and are collected.
- Secrets stay out of the unit file (it is world-readable): store credentials go in the optional
  environment file, `%h/.config/runner/scheduler.env`, which the unit reads when it exists.
- Only the installed runner is imported: a `python -m runner.cli.main` command runs with `-P`
  (Python 3.11+: the working directory is not put on sys.path; a `pip install --user` runner, which
  `-I` would hide, still works), so a runner.py or runner/ in the home directory (a user unit's
  working directory, set explicitly) cannot shadow it; a console script (an absolute path) puts only
  its own directory there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

UNIT_NAME = "runner-scheduler.service"
ENVIRONMENT_FILE = "%h/.config/runner/scheduler.env"

# Settings the unit carries over from the installing shell. Credentials are deliberately absent.
CARRIED_VARIABLES = (
    "RUNNER_HOME",
    "RUNNER_STORE",
    "RUNNER_BACKEND",
    "RUNNER_REGISTRY",
    "RUNNER_BACKOFF",
    "RUNNER_GRACE",
    "PATH",
    "KUBECONFIG",
)


def systemd_quote(value: str, *, command: bool = False) -> str:
    """A value as one double-quoted word in a unit file, with specifiers (%) kept literal; in a command
    line (ExecStart) variables ($) are expanded too, so they are escaped there as well."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    if command:
        escaped = escaped.replace("$", "$$")
    return f'"{escaped}"'


def isolated(runner: Sequence[str]) -> list[str]:
    """The runner's command with `-P` after the interpreter of a `PYTHON -m MODULE` command (unless it
    has -P or -I already): the working directory stays off sys.path. A console script is left alone."""
    words = list(runner)
    if "-m" in words[1:] and not {"-P", "-I"} & set(words[1 : words.index("-m", 1)]):
        words.insert(1, "-P")
    return words


def render_scheduler_unit(runner: Sequence[str], environment: Mapping[str, str]) -> str:
    """The unit running `<runner...> scheduler`, with the carried settings from `environment`."""
    command = " ".join(systemd_quote(word, command=True) for word in [*isolated(runner), "scheduler"])
    lines = [
        "[Unit]",
        "Description=runner scheduler: starts the scheduled jobs of this machine",
        "After=network-online.target docker.service",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={command}",
        "WorkingDirectory=%h",
    ]
    for name in CARRIED_VARIABLES:
        if environment.get(name):
            lines.append(f"Environment={systemd_quote(f'{name}={environment[name]}')}")
    lines += [
        f"EnvironmentFile=-{ENVIRONMENT_FILE}",
        "Restart=on-failure",
        "RestartSec=10",
        "# Runs belong to their own supervisors: stopping the scheduler must not stop them.",
        "KillMode=process",
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
    ]
    return "\n".join(lines)
