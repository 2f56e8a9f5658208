"""The agent: run one attempt of a job inside its container and always leave its record in the store.

    python -m runner.agent -- COMMAND [ARGS...]

It runs COMMAND (see supervise.py), tees its output to stdout and logs/attempt-<N>.log, then on
every kind of exit collects outputs, logs, run.json and job.yaml into the store (MANIFEST.json
last) and exits with the command's code (128+N when killed by signal N). If collecting fails it
says so on stderr and never exits 0: a run whose artifacts were lost must not look successful.

Once collected, it keeps the job's store as the local supervisor does (runner.store.housekeeping):
`<job>/latest` moves to a succeeded run, then RUNNER_RETENTION deletes the runs no rule keeps. Cluster
and nightly runs have no runner attached to do it. Problems there are warnings: the exit code is the
command's.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from runner.agent.inputs import fetch_inputs
from runner.agent.notify import RunEnd, notify, wanted
from runner.agent.outcome import Ended, State, agent_exit_code, describe, final_state, run_summary
from runner.agent.settings import (
    NO_STORE,
    USAGE,
    AgentSettings,
    SettingsError,
    child_environment,
    parse_command,
    parse_settings,
    settings_help,
)
from runner.agent.supervise import Signals, run_command
from runner.agent.tee import Tee
from runner.agent.telemetry import telemetry_for
from runner.errors import RunnerError, reason_of
from runner.store import Store, open_store
from runner.store.collect import collect_run, collect_worker, next_attempt, worker_prefix
from runner.store.housekeeping import after_collect
from runner.workers import index_of

DRAIN_SECONDS = 2.0  # after the command ends, how long output still in the pipe may take to arrive
INPUTS_FAILED = 1  # the exit code of an attempt whose inputs could not be fetched (a retry may fetch them)
NO_MANIFEST = "# the resolved manifest was not given to the runner agent (RUNNER_MANIFEST is not set)\n"


def error(message: str) -> None:
    print(f"runner-agent: error: {message}", file=sys.stderr, flush=True)


def warning(message: str) -> None:
    print(f"runner-agent: warning: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    if argv and argv[0] in ("-h", "--help"):
        print(f"{USAGE}\n\n{settings_help()}", end="")
        return 0
    signals = Signals()
    signals.install()  # before anything else: a SIGTERM from now on is passed on, never lost
    try:
        settings = parse_settings(env)
        command = parse_command(argv)
        store = None if settings.store_url == NO_STORE else open_store(settings.store_url)
    except SettingsError as problem:
        error(str(problem))
        return 2
    except RunnerError as problem:
        error(f"RUNNER_STORE: {problem.message}" + (f"; {problem.hint}" if problem.hint else ""))
        return 2
    return run(settings, command, store, env, signals)


def run(
    settings: AgentSettings, command: list[str], store: Store | None, env: Mapping[str, str], signals: Signals
) -> int:
    if settings.attempt_from_store and store is not None:
        worker = index_of(settings.worker)
        settings = replace(settings, attempt=next_attempt(store, settings.job, settings.run_id, worker))
    if settings.retention_problem is not None and store is not None:
        warning(settings.retention_problem)  # said now, and again after collection, where it is seen
    manifest = read_job_manifest(settings.manifest)
    tee, logs_dir, temporary = open_log(settings.logs, settings.log_name)
    try:
        settings.outputs.mkdir(parents=True, exist_ok=True)
    except OSError as problem:
        tee.note(f"cannot create the outputs directory {settings.outputs}: {problem.strerror}")
    telemetry = telemetry_for(
        outputs=settings.outputs,
        job=settings.job,
        run_id=settings.run_id,
        store=store,
        interval=settings.metrics_interval,
        env=env,
    )
    child_env = {**child_environment(env, settings), **telemetry.environment()}
    if settings.metrics_interval > 0:
        telemetry.start()
    unfetched = fetch_inputs(env, tee.note)  # RUNNER_INPUTS: into the inputs' paths, before the command
    if unfetched is None:
        ended = run_command(command, child_env, tee=tee, signals=signals, grace=settings.grace)
    else:
        tee.note(f"cannot fetch the inputs: {unfetched}")
        now = time.time()
        ended = Ended(INPUTS_FAILED, now, now, start_error=f"inputs: {unfetched}")
    tee.wait(DRAIN_SECONDS)
    tee.close()
    if settings.metrics_interval > 0:
        telemetry.stop()
    if store is None:
        return ended.exit_code
    return finish(settings, store, ended, manifest, logs_dir, temporary=temporary)


def finish(
    settings: AgentSettings, store: Store, ended: Ended, manifest: str, logs_dir: Path, *, temporary: bool
) -> int:
    """Collect the ended attempt, keep the job's store and tell spec.notify; the agent's exit code."""
    if settings.worker is not None and not settings.worker.chief:
        collected = collect_worker_area(settings, settings.worker.index, store, ended, logs_dir)
    else:
        collected = collect(settings, store, ended, manifest, logs_dir)
        if collected:
            keep_house(settings, store, ended)
        tell(settings, ended)  # the chief's end is the run's: the other workers keep no house, tell no one
    if collected and temporary:
        shutil.rmtree(logs_dir, ignore_errors=True)
    return agent_exit_code(ended.exit_code, collected=collected)


def tell(settings: AgentSettings, ended: Ended) -> None:
    """Post the run's end to spec.notify's webhook when it asks for this end; a failed attempt with
    attempts left is no end. Bounded in time, and a failure is a warning: the run's result stands."""
    state = final_state(ended)
    last = state is not State.FAILED or settings.attempt >= settings.max_attempts
    if settings.notify_webhook is None or not last or not wanted(settings.notify_on, state.value):
        return
    end = RunEnd(
        job=settings.job,
        run_id=settings.run_id,
        state=state.value,
        message=describe(ended, settings.grace),
        exit_code=ended.exit_code,
        started=ended.started,
        finished=ended.finished,
        attempt=settings.attempt,
        host=socket.gethostname(),
    )
    notify(settings.notify_webhook, end, report=warning)


def keep_house(settings: AgentSettings, store: Store, ended: Ended, now: float | None = None) -> None:
    """Move `latest` and apply retention after a complete collection; report, never fail the run."""
    done = after_collect(
        store,
        job=settings.job,
        run_id=settings.run_id,
        succeeded=final_state(ended) is State.SUCCEEDED,
        finished=ended.finished,
        policy=settings.retention,
        now=time.time() if now is None else now,
    )
    if done.latest_moved:
        print(f"runner-agent: {settings.job}/latest -> {settings.run_id}", file=sys.stderr, flush=True)
    if done.deleted and settings.retention is not None:
        plural = "s" if len(done.deleted) > 1 else ""
        print(
            f"runner-agent: retention {settings.retention.to_env()} deleted {len(done.deleted)} old "
            f"run{plural} of {settings.job}: {', '.join(done.deleted)}",
            file=sys.stderr,
            flush=True,
        )
    for problem in done.problems:
        warning(problem)
    if settings.retention_problem is not None:
        warning(settings.retention_problem)


def read_job_manifest(path: Path | None) -> str:
    if path is None:
        return NO_MANIFEST
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as problem:
        reason = problem.strerror if isinstance(problem, OSError) else str(problem)
        warning(f"cannot read RUNNER_MANIFEST {path}: {reason}")
        return f"# the runner agent could not read the manifest at {path}: {reason}\n"


def open_log(wanted: Path | None, name: str) -> tuple[Tee, Path, bool]:
    """A tee into <logs>/<name>, the logs directory, and whether that is a temporary one of the agent's own.

    When RUNNER_LOGS cannot be written the log goes to a temporary directory instead: a run is
    never refused, nor its log lost, over where the log is kept.
    """
    if wanted is not None:
        try:
            wanted.mkdir(parents=True, exist_ok=True)
            return Tee(wanted / name), wanted, False
        except OSError as problem:
            warning(
                f"cannot write the log in RUNNER_LOGS {wanted}: {problem.strerror}; "
                "using a temporary directory"
            )
    temporary = Path(tempfile.mkdtemp(prefix="runner-agent-logs-"))
    return Tee(temporary / name), temporary, True


def collect(settings: AgentSettings, store: Store, ended: Ended, manifest: str, logs_dir: Path) -> bool:
    """Collect the run into the store; whether that worked (errors are reported on stderr)."""
    state = final_state(ended)
    try:
        collection = collect_run(
            store,
            job=settings.job,
            run_id=settings.run_id,
            manifest_text=manifest,
            summary=run_summary(settings, ended, host=socket.gethostname()),
            logs_dir=logs_dir,
            outputs_dir=settings.outputs,
            workers=1 if settings.worker is None else settings.worker.count,
        )
    except Exception as problem:  # whatever went wrong, say so without a traceback and fail the run
        reason = reason_of(problem)
        error(
            f"run {settings.run_id} {state.value} (exit code {ended.exit_code}), but collecting it into "
            f"{settings.store_url} failed: {reason}; its outputs and logs were not saved"
        )
        return False
    refused = f", {len(collection.refused)} refused (see run.json)" if collection.refused else ""
    print(
        f"runner-agent: run {settings.run_id} {state.value} (exit code {ended.exit_code}); "
        f"collected {len(collection.files)} files into {store.location(f'{settings.job}/{settings.run_id}')}"
        f"{refused}",
        file=sys.stderr,
        flush=True,
    )
    return True


def collect_worker_area(
    settings: AgentSettings, index: int, store: Store, ended: Ended, logs_dir: Path
) -> bool:
    """Collect a worker's outputs and logs under workers/<index>/ in the run's prefix; whether that worked."""
    area = worker_prefix(settings.job, settings.run_id, index)
    try:
        collection = collect_worker(
            store,
            job=settings.job,
            run_id=settings.run_id,
            index=index,
            logs_dir=logs_dir,
            outputs_dir=settings.outputs,
        )
    except Exception as problem:  # as for the chief: said without a traceback, and the worker fails
        error(
            f"worker {index} ended (exit code {ended.exit_code}), but collecting it into "
            f"{store.location(area)} failed: {reason_of(problem)}"
        )
        return False
    print(
        f"runner-agent: worker {index} ended (exit code {ended.exit_code}); "
        f"collected {len(collection.files)} files into {store.location(area)}",
        file=sys.stderr,
        flush=True,
    )
    return True
