"""The agent's settings, read from the container's environment, and the command's environment.

RUNNER_STORE     artifact store URL (required); "none" when a runner attached to the container collects
RUNNER_JOB       job name: the first part of the run's store prefix (required)
RUNNER_RUN_ID    run id: the second part (required)
RUNNER_ATTEMPT   attempt number, 1-based (default: one more than the attempt logs already in the store)
RUNNER_OUTPUTS   directory the command writes its outputs to (default /outputs)
RUNNER_LOGS      directory for the attempt log (default: a fresh temporary directory)
RUNNER_MANIFEST  the resolved manifest, stored as job.yaml (optional)
RUNNER_GRACE     seconds between a forwarded signal and SIGKILL (default 10)
RUNNER_BACKEND   recorded as run.json's backend (default "container")
RUNNER_RETENTION the job's retention, keepLast=N,keepDays=D (optional; a bad value is reported, not fatal)
RUNNER_METRICS_INTERVAL seconds between samples of the run's CPU, memory and GPUs and uploads of its
                 live metrics (default 5; 0 turns sampling and live uploads off)
RUNNER_NOTIFY_WEBHOOK the URL spec.notify's reference resolves to (a secret: the command never sees it)
RUNNER_NOTIFY_ON which run ends to tell it: failed,succeeded,cancelled (default failed,succeeded)
RUNNER_MAX_ATTEMPTS the run's attempts in all (retries + 1; default 1): a failed attempt before the last
                 is no run end, and is not told
RUNNER_IMAGE     the job image's reference, recorded in run.json (optional; cluster runs)
RUNNER_WORKER_ADDRESSES every worker's host:port, by index, in a multi-worker run (optional); the
                 worker's own index is RUNNER_WORKER_INDEX, else an Indexed Job's JOB_COMPLETION_INDEX.
                 Worker 0 collects the run; the others their outputs and logs under workers/<index>/

Everything here is pure: values in, values or a SettingsError out. A bad RUNNER_RETENTION is no
SettingsError: the job still runs and is collected, only old runs are not deleted (retention_problem).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from runner.errors import UnsafePathError, UserError
from runner.store.collect import run_prefix
from runner.store.retention import RetentionPolicy, parse_retention
from runner.workers import WorkerPlace, WorkerSettingError, place_from_env, worker_environment

REQUIRED = ("RUNNER_STORE", "RUNNER_JOB", "RUNNER_RUN_ID")
NO_STORE = "none"  # RUNNER_STORE=none: run, tee and forward signals; the attached runner collects
# The agent's own settings: the command does not see them (it sees what the process backend gives a job).
AGENT_ONLY = (
    "RUNNER_STORE",
    "RUNNER_LOGS",
    "RUNNER_MANIFEST",
    "RUNNER_GRACE",
    "RUNNER_BACKEND",
    "RUNNER_RETENTION",
    "RUNNER_METRICS_INTERVAL",
    "RUNNER_NOTIFY_WEBHOOK",
    "RUNNER_NOTIFY_ON",
    "RUNNER_MAX_ATTEMPTS",
    "RUNNER_INPUTS",  # what the agent fetches before the command: the command sees the files
)
USAGE = "usage: python -m runner.agent -- COMMAND [ARGS...]"


class SettingsError(Exception):
    """The agent cannot start: a missing or malformed setting, or no command. One line, exit 2."""


@dataclass(frozen=True)
class AgentSettings:
    store_url: str
    job: str
    run_id: str
    attempt: int = 1
    outputs: Path = Path("/outputs")
    logs: Path | None = None
    manifest: Path | None = None
    grace: float = 10.0
    backend: str = "container"
    # RUNNER_ATTEMPT unset (Kubernetes gives a Job's pods no attempt number): count the logs in the store
    attempt_from_store: bool = False
    retention: RetentionPolicy | None = None
    retention_problem: str | None = None  # why RUNNER_RETENTION was not understood
    metrics_interval: float = 5.0  # 0: no system samples, no live uploads
    notify_webhook: str | None = None  # a secret: never logged, never in run.json
    notify_on: tuple[str, ...] = ("failed", "succeeded")
    max_attempts: int = 1
    image: str | None = None  # the job image's reference, for run.json
    worker: WorkerPlace | None = None  # this worker's place in a multi-worker run

    @property
    def log_name(self) -> str:
        return f"attempt-{self.attempt}.log"


def settings_help() -> str:
    """The table of variables at the top of this module."""
    table = (__doc__ or "").split("\n\n")[1]
    return f"Settings, from the environment:\n{table}\n"


def parse_settings(env: Mapping[str, str]) -> AgentSettings:
    missing = [name for name in REQUIRED if not env.get(name, "").strip()]
    if missing:
        plural = len(missing) > 1
        raise SettingsError(
            f"missing setting{'s' if plural else ''} {', '.join(missing)}: "
            f"set {'them' if plural else 'it'} in the job container's environment"
        )
    job, run_id = env["RUNNER_JOB"].strip(), env["RUNNER_RUN_ID"].strip()
    try:
        run_prefix(job, run_id)
    except UnsafePathError as error:
        raise SettingsError(f"RUNNER_JOB/RUNNER_RUN_ID: {error.message}") from None
    retention, retention_problem = _retention(env.get("RUNNER_RETENTION", ""))
    return AgentSettings(
        store_url=env["RUNNER_STORE"].strip(),
        job=job,
        run_id=run_id,
        attempt=_attempt(env.get("RUNNER_ATTEMPT", "")),
        outputs=_path(env, "RUNNER_OUTPUTS") or Path("/outputs"),
        logs=_path(env, "RUNNER_LOGS"),
        manifest=_path(env, "RUNNER_MANIFEST"),
        grace=_grace(env.get("RUNNER_GRACE", "")),
        backend=env.get("RUNNER_BACKEND", "").strip() or "container",
        attempt_from_store=not env.get("RUNNER_ATTEMPT", "").strip(),
        retention=retention,
        retention_problem=retention_problem,
        metrics_interval=metrics_interval(env),
        notify_webhook=env.get("RUNNER_NOTIFY_WEBHOOK", "").strip() or None,
        notify_on=_events(env.get("RUNNER_NOTIFY_ON", "")),
        max_attempts=_attempt(env.get("RUNNER_MAX_ATTEMPTS", ""), "RUNNER_MAX_ATTEMPTS"),
        image=env.get("RUNNER_IMAGE", "").strip() or None,
        worker=_worker(env),
    )


def _worker(env: Mapping[str, str]) -> WorkerPlace | None:
    try:
        return place_from_env(env)
    except WorkerSettingError as problem:
        raise SettingsError(str(problem)) from None


def _retention(raw: str) -> tuple[RetentionPolicy | None, str | None]:
    """The policy, or why RUNNER_RETENTION is not one."""
    try:
        return parse_retention(raw), None
    except UserError as error:
        return None, f"RUNNER_RETENTION: {error.message}; {error.hint}; old runs are not deleted"


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "")
    return Path(raw).absolute() if raw else None


def _attempt(raw: str, name: str = "RUNNER_ATTEMPT") -> int:
    if not raw.strip():
        return 1
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise SettingsError(f"{name}={raw!r} is not an attempt number; use 1, 2, ...")
    return value


def _events(raw: str) -> tuple[str, ...]:
    words = tuple(word.strip() for word in raw.split(",") if word.strip())
    unknown = [word for word in words if word not in ("failed", "succeeded", "cancelled")]
    if unknown:
        raise SettingsError(
            f"RUNNER_NOTIFY_ON: unknown event {unknown[0]!r}; use failed, succeeded, cancelled"
        )
    return words or ("failed", "succeeded")


def _grace(raw: str) -> float:
    return _seconds("RUNNER_GRACE", raw, 10.0)


def metrics_interval(env: Mapping[str, str]) -> float:
    """RUNNER_METRICS_INTERVAL: seconds between system samples (default 5; 0 turns them off)."""
    return _seconds("RUNNER_METRICS_INTERVAL", env.get("RUNNER_METRICS_INTERVAL", ""), 5.0)


def _seconds(name: str, raw: str, default: float) -> float:
    if not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        raise SettingsError(f"{name}={raw!r} is not a number of seconds; use e.g. {default:g}")
    return value


def parse_command(argv: Sequence[str]) -> list[str]:
    """The command after an optional leading '--'."""
    command = list(argv[1:] if argv and argv[0] == "--" else argv)
    if not command:
        raise SettingsError(f"no command given; {USAGE}")
    return command


def child_environment(env: Mapping[str, str], settings: AgentSettings) -> dict[str, str]:
    """The command's environment: the container's, less the agent's settings, plus the run's variables."""
    child = {key: value for key, value in env.items() if key not in AGENT_ONLY}
    child.update(
        {
            "RUNNER_JOB": settings.job,
            "RUNNER_RUN_ID": settings.run_id,
            "RUNNER_ATTEMPT": str(settings.attempt),
            "RUNNER_OUTPUTS": str(settings.outputs),
        }
    )
    if settings.worker is not None:
        child.update(worker_environment(settings.worker))
    child.setdefault("PYTHONUNBUFFERED", "1")  # live logs, unless the image or manifest says otherwise
    return child
