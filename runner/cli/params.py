"""Option values the commands share, checked as click parses them: a bad one exits 2 naming the flag."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

if TYPE_CHECKING:
    from runner.spec.overrides import Override


def duration(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """A duration as manifests write them (30s, 10m, 2h, 1d, 1h30m): seconds."""
    if value is None:
        return None
    from runner.spec.quantities import parse_duration

    try:
        return parse_duration(value)
    except ValueError as problem:
        raise click.BadParameter(str(problem), ctx=ctx, param=param) from None


def shown_duration(seconds: int) -> str:
    from runner.spec.quantities import format_duration

    return format_duration(seconds)


def manifest_changes(
    *, sets: tuple[str, ...], envs: tuple[str, ...], gpus: str | None, name: str | None
) -> list[Override]:
    """`runner submit`'s --set, --env, --gpus and --name as manifest overrides, in that order (a later
    one wins where two set the same path). A malformed one: exit 2, naming the flag."""
    from runner.spec import overrides

    changes: list[Override] = []
    for flag, values, parse in (
        ("--set", sets, overrides.set_override),
        ("--env", envs, overrides.env_override),
    ):
        for value in values:
            try:
                changes.append(parse(value))
            except ValueError as problem:
                raise click.UsageError(f"{flag} {problem}") from None
    if gpus is not None:
        try:
            changes.extend(overrides.gpus_overrides(gpus))
        except ValueError as problem:
            raise click.UsageError(f"--gpus {problem}") from None
    if name is not None:
        changes.append(overrides.name_override(name))
    return changes


def complete_runs(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of a RUN: the run ids and job names recorded here that start so."""
    from runner.config import load_settings
    from runner.records import RunRecords

    try:
        records = RunRecords(load_settings().database)
        try:
            listed = records.list(limit=500)
        finally:
            records.close()
    except Exception:  # completion never fails loudly
        return []
    names = dict.fromkeys([record.id for record in listed] + [record.job for record in listed])
    return [name for name in names if name.startswith(incomplete)]


def _remember_context(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        root = ctx.find_root()
        root.obj = {**(root.obj or {}), "context": value}


def context_option(command: F) -> F:
    """--context NAME: the kubeconfig context, as kubectl takes it (default: its current context)."""
    decorated: F = click.option(
        "--context",
        "kube_context",
        metavar="NAME",
        expose_value=False,
        callback=_remember_context,
        help="The kubeconfig context to use (default: the current context), as kubectl's --context.",
    )(command)
    return decorated


def chosen_context() -> str | None:
    """The --context given to this command, if any."""
    current = click.get_current_context(silent=True)
    if current is None:
        return None
    value = (current.find_root().obj or {}).get("context")
    return value if isinstance(value, str) else None
