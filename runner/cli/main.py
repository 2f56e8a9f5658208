"""The `runner` command line. The one error boundary: RunnerError prints a message, never a traceback.

Heavy modules (pydantic, the service layer) are imported inside commands so `runner --help` stays fast.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from runner import __version__
from runner.cli import params
from runner.cli.errors import for_each, format_error
from runner.cli.session import now, service
from runner.cli.streaming import LogPrinter, report_end, say_refused, stream_logs
from runner.errors import ManifestError, RunnerError

EXIT_INTERRUPTED = 130
CONNECTION_HINT = "check that the server is up and reachable from here (--debug shows the traceback)"


class RunnerGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RunnerError as error:
            if os.environ.get("RUNNER_DEBUG") or (ctx.obj or {}).get("debug"):
                raise
            click.echo(format_error(error), err=True)
            ctx.exit(error.exit_code)
        except OSError as error:
            if error.errno not in (errno.ENOSPC, errno.EDQUOT) or _debugging(ctx):
                raise
            full = disk_full(error)
            click.echo(format_error(full), err=True)
            ctx.exit(full.exit_code)
        except KeyboardInterrupt:
            if _debugging(ctx):
                raise
            click.echo("\ninterrupted", err=True)  # Ctrl-C no command caught: 130, as the README says
            ctx.exit(EXIT_INTERRUPTED)
        except Exception as error:
            if _debugging(ctx):
                raise
            from runner.service.outcomes import connection_problem

            problem = connection_problem(error)
            if problem is None:
                raise
            click.echo(format_error(RunnerError(problem, hint=CONNECTION_HINT)), err=True)
            ctx.exit(1)


def _debugging(ctx: click.Context) -> bool:
    return bool(os.environ.get("RUNNER_DEBUG") or (ctx.obj or {}).get("debug"))


def disk_full(error: OSError) -> RunnerError:
    """A full disk met outside the run records (those say so themselves): which disk, in one line."""
    from runner.config import load_settings

    where = error.filename or str(load_settings().home)
    return RunnerError(
        f"no space left on the disk holding {where}: {error.strerror}",
        hint="free some space on that disk and run the command again",
    )


@click.group(cls=RunnerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="runner")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Run batch jobs from a manifest on this machine or a GPU cluster, and collect their artifacts.

    \b
    Start with:  runner submit jobs/mnist/job.yaml
    Then:        runner list;  runner logs mnist;  runner artifacts mnist
    """
    ctx.obj = {"debug": debug}


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(files: tuple[Path, ...]) -> None:
    """Check manifests; print every problem with file:line:column. Exit 2 if any is invalid."""
    from runner.spec import load_manifest

    failed = 0
    for path in files:
        try:
            loaded = load_manifest(path)
        except ManifestError as error:
            failed += 1
            click.echo(format_error(error), err=True)
            continue
        click.echo(f"{path}: valid (job {loaded.manifest.name})")
        missing = missing_requirements(loaded)
        if missing:  # valid, and runs on the process backend; a container build would fail
            click.echo(f"warning: {path}: {missing}", err=True)
    if failed:
        click.echo(f"{failed} of {len(files)} manifest(s) invalid", err=True)
        sys.exit(2)


def missing_requirements(loaded: Any) -> str | None:
    """spec.image.requirements naming a file its build context does not hold: what to say, or None."""
    requirements = loaded.manifest.spec.image.requirements
    if not isinstance(requirements, str):
        return None
    found = loaded.context_dir / requirements
    if found.is_file():
        return None
    return (
        f"spec.image.requirements: {requirements!r} is not a file in the build context "
        f"({loaded.context_dir}): building the job's image will fail; give a file there, or a list of "
        "pip specs"
    )


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--backend",
    help="auto (docker when an engine answers, else process), process, docker or kubernetes. "
    "Default: $RUNNER_BACKEND, else auto.",
)
@click.option("-d", "--detach", is_flag=True, help="Print the run id and return while the run goes on.")
@click.option("--input", "inputs", multiple=True, metavar="NAME=SOURCE", help="Point an input elsewhere.")
@click.option("--env", "envs", multiple=True, metavar="KEY=VALUE", help="Set spec.env KEY (repeatable).")
@click.option("--gpus", metavar="N[:TYPE]", help="Set spec.resources.gpu (and gpuType), e.g. 2:H100.")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="PATH=VALUE",
    help="Set any manifest field (repeatable), VALUE as YAML: spec.retries=3, spec.resources.memory=8Gi.",
)
@click.option("--name", help="Set metadata.name: the job's name.")
@click.option(
    "-n",
    "--namespace",
    help="With --backend kubernetes: the namespace (sets spec.kubernetes.namespace).",
)
@params.context_option
def submit(
    *,
    file: Path,
    backend: str | None,
    detach: bool,
    inputs: tuple[str, ...],
    envs: tuple[str, ...],
    gpus: str | None,
    sets: tuple[str, ...],
    name: str | None,
    namespace: str | None,
) -> None:
    """Run the job in FILE, stream its logs and exit with its exit code.

    --set, --env, --gpus and --name change the manifest for this run only;
    they are validated like the file (a problem names the flag).

    \b
    Exit codes: the job's own; 124 timed out; 130 cancelled (Ctrl-C cancels
    the run); 2 invalid manifest or arguments; 1 the runner failed.
    """
    if namespace is not None:
        sets = (*sets, f"spec.kubernetes.namespace={namespace}")
    runs = service()
    # before the manifest's modules load (see ready_backend); with -d, a builder process of its own launches
    ready = runs.ready_backend(backend, prestart=not detach)
    try:
        changes = params.manifest_changes(sets=sets, envs=envs, gpus=gpus, name=name)
        record = runs.submit(
            file,
            backend,
            inputs,
            progress=lambda line: click.echo(line, err=True),
            changes=changes,
            ready=ready,
            detach=detach,
        )
    finally:
        runs.release(ready)
    if detach:
        from runner.service.building import local_build_log

        where = local_build_log(runs.settings, record.id)
        click.echo(f"run {record.id} submitted (backend: {record.backend}); building, log: {where}", err=True)
        click.echo(record.id)
        return
    click.echo(f"run {record.id} submitted (backend: {record.backend}); Ctrl-C cancels it", err=True)
    printer = LogPrinter(record.id, prefix=True)
    interrupted = False
    try:
        stream_logs(runs, record.id, prefix=True, printer=printer)
    except KeyboardInterrupt:
        interrupted = True
        click.echo(f"\ncancelling run {record.id} ...", err=True)
    current = runs.get(record.id)  # ended, or left by Ctrl-C: then cancel it
    final = runs.cancel_run(current)
    if interrupted:  # the job's last lines, written while it stopped
        stream_logs(runs, record.id, prefix=True, follow=False, printer=printer)
    report_end(runs, final)
    from runner.service import exit_code_of

    sys.exit(exit_code_of(final))


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--registry", help="Push to this registry, e.g. 127.0.0.1:5000. Default: $RUNNER_REGISTRY.")
@click.option("--push/--no-push", default=True, show_default=True, help="Push when a registry is known.")
def build(file: Path, registry: str | None, push: bool) -> None:
    """Build the job image of FILE (skipped when its content hash is already built) and push it.

    Prints the image reference on stdout; progress goes to stderr.
    """
    from runner.config import load_settings
    from runner.service.imagebuild import build_job_image

    built, digest = build_job_image(
        file, load_settings(), registry=registry, push=push, progress=lambda line: click.echo(line, err=True)
    )
    verb = f"built in {built.seconds:.1f}s" if built.built else "unchanged (nothing to build)"
    click.echo(f"image {built.reference} {verb}" + (f"; pushed {digest}" if digest else ""), err=True)
    click.echo(built.reference)


def _namespace_label(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A namespace must be a DNS-1123 label: refused with exit 2 before anything is printed."""
    from runner.spec.names import check_dns_label

    try:
        return check_dns_label(value, "namespace")
    except ValueError as problem:
        raise click.BadParameter(str(problem), ctx=ctx, param=param) from None


@cli.command()
@click.option(
    "-n",
    "--namespace",
    default="default",
    show_default=True,
    callback=_namespace_label,
    help="The namespace jobs run in.",
)
def rbac(namespace: str) -> None:
    """Print the least-privilege ServiceAccounts, Role and RoleBinding the runner needs in NAMESPACE.

    \b
    Apply them with:  runner rbac -n ml | kubectl apply -f -
    """
    import yaml

    from runner.render.rbac import render_rbac

    click.echo(yaml.safe_dump_all(render_rbac(namespace), sort_keys=False), nl=False)


@cli.command()
@click.argument("run", shell_complete=params.complete_runs)
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json", "yaml"]), default="text")
def status(run: str, fmt: str) -> None:
    """Show one run: RUN is a run id, a unique prefix of one, or a job name (its latest run)."""
    from runner.cli.output import run_document, run_fields, structured

    runs = service()
    record = runs.get(run)
    stored = runs.stored_summary(record)
    refused = runs.refused(record)
    document = run_document(record, runs.location(record), stored)
    if fmt == "text":
        click.echo(run_fields(record, runs.location(record), now(), stored), nl=False)
        say_refused(refused)
    else:
        click.echo(structured(document, fmt), nl=False)


@cli.command()
@click.argument("run", shell_complete=params.complete_runs)
@click.option("-f", "--follow", is_flag=True, help="Keep streaming until the run ends.")
@click.option("--attempt", type=click.IntRange(min=1), help="Only this attempt's log.")
@click.option("--prefix", is_flag=True, help="Prefix each line with the run id.")
@click.option(
    "--tail",
    type=click.IntRange(min=0),
    metavar="N",
    help="Only the last N lines of what is there (then, with -f, what comes).",
)
@click.option(
    "--since",
    callback=params.duration,
    metavar="DURATION",
    help="Only attempts that ran within DURATION (10m, 2h); a log has no time per line.",
)
@click.option(
    "--worker",
    type=click.IntRange(min=0),
    metavar="I",
    help="Only worker I's log, in a multi-worker run (each line is otherwise prefixed [worker I]).",
)
def logs(
    *,
    run: str,
    follow: bool,
    attempt: int | None,
    prefix: bool,
    tail: int | None,
    since: int | None,
    worker: int | None,
) -> None:
    """Print a run's logs (every attempt, in order; every worker's, interleaved as written)."""
    stream_logs(
        service(), run, prefix=prefix, follow=follow, attempt=attempt, tail=tail, since=since, worker=worker
    )


@cli.command()
@click.argument(
    "runs_to_cancel", metavar="RUN...", nargs=-1, required=True, shell_complete=params.complete_runs
)
@click.option("--no-wait", is_flag=True, help="Return without waiting for the runs to stop.")
def cancel(runs_to_cancel: tuple[str, ...], no_wait: bool) -> None:
    """Stop runs: SIGTERM, a grace period, then SIGKILL. They are collected as cancelled."""
    runs = service()

    def stop(reference: str) -> str:
        before = runs.get(reference)
        if before.state.terminal:
            return f"run {before.id} already {before.state.value}"
        after = runs.cancel_run(before, wait=not no_wait)
        return f"run {after.id} {after.state.value if after.state.terminal else 'cancelling'}"

    for_each(runs_to_cancel, stop)


@cli.command()
@click.argument("runs_to_collect", metavar="RUN...", nargs=-1, required=True)
def collect(runs_to_collect: tuple[str, ...]) -> None:
    """Collect runs whose collection failed (state uncollected) or was cut short, now.

    Their outputs and logs wait in their work directories until the store has them; a run already
    collected is left as it is. Exit 1 when a run still cannot be collected.
    """
    runs = service()

    def gather(reference: str) -> str:
        record = runs.collect(reference)
        if record.state.value == "uncollected":
            from runner.errors import StoreError

            raise StoreError(f"run {record.id} is still uncollected: {record.message}")
        where = runs.location(record)
        return f"run {record.id} {record.state.value}; collected in {where}"

    for_each(runs_to_collect, gather)


def _add_commands_of_their_own_modules() -> None:
    from runner.cli.artifacts import artifacts
    from runner.cli.cleanup import delete, prune
    from runner.cli.listing import list_runs
    from runner.cli.metrics import metrics
    from runner.cli.render import render
    from runner.cli.resident.command import resident
    from runner.cli.schedule import schedule
    from runner.cli.scheduler import scheduler
    from runner.cli.setup import completion, init
    from runner.cli.ui import ui
    from runner.cli.wait import wait

    commands = (
        list_runs,
        render,
        artifacts,
        schedule,
        scheduler,
        metrics,
        ui,
        delete,
        prune,
        init,
        completion,
        wait,
        resident,
    )
    for command in commands:
        cli.add_command(command)


_add_commands_of_their_own_modules()


def main(report: Callable[[int], None] | None = None) -> None:
    """`runner` with sys.argv; report, when given, learns the exit code just before the process ends
    (the resident server's process tells its client)."""
    try:
        cli(prog_name="runner")
    except BrokenPipeError:
        # the reader went away (`runner logs RUN | head`): stop quietly, as shell tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
    except SystemExit as done:  # how every command ends (click's standalone mode)
        leave(done.code, report)
    leave(0, report)


def leave(code: object, report: Callable[[int], None] | None = None) -> None:
    """Exit at once with code, once stdout and stderr are flushed. A command has closed its files and
    records by now; tearing down the interpreter's modules (pydantic's among them) would add ~40 ms to
    every command, a tenth of a trivial `runner submit`."""
    import threading

    if any(not thread.daemon for thread in threading.enumerate() if thread is not threading.main_thread()):
        raise SystemExit(code)  # a thread the command left running is waited for, as at an ordinary exit
    status = exit_status(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = status or 141
    if report is not None:
        report(status)
    os._exit(status)


def exit_status(code: object) -> int:
    """The process's exit status for SystemExit's code, as Python gives it: None is 0, and any other
    object but an int is printed (sys.exit("message")) and is 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


if __name__ == "__main__":
    main()
