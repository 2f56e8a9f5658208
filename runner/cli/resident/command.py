"""`runner resident status|stop`: the resident servers of this installation for this user, one per cgroup
commands were started from."""

from __future__ import annotations

import time

import click


@click.group()
def resident() -> None:
    """The resident runner: a process that keeps runner's modules loaded, so that each command starts in
    milliseconds (on unless RUNNER_RESIDENT=0; one per cgroup, such as a terminal's scope)."""


def answering(kind: str) -> list[dict[str, object]]:
    """Each server's answer to kind (status, stop), the one serving this process's cgroups marked
    current."""
    from runner.cli.resident.client import ask, server_address, server_addresses  # sockets: only here

    here = server_address()
    found = []
    for at in server_addresses() or [here]:  # no /proc/net/unix to list them: this cgroup's only
        answer = ask(kind, at)
        if answer is not None:
            found.append({**answer[1], "current": at == here})
    return found


@resident.command()
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json", "yaml"]), default="text")
def status(fmt: str) -> None:
    """The resident servers that answer: their pid, since when, and the cgroup each serves; CURRENT
    marks the one that serves commands from here. Exit 1 when none does."""
    servers = answering("status")
    current = any(server["current"] for server in servers)
    if fmt != "text":
        from runner.cli.output import structured  # yaml: only for -o

        click.echo(structured({"running": current, "servers": servers}, fmt), nl=False)
    elif servers:
        from runner.cli.output import table

        rows = [
            [
                "*" if server["current"] else "",
                str(server["pid"]),
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(str(server["started"])))),
                str(server.get("cgroup", "")),
            ]
            for server in servers
        ]
        click.echo(table(["CURRENT", "PID", "SERVING SINCE", "CGROUP"], rows))
    if not current:
        if fmt == "text":
            click.echo(
                "no resident server serves this cgroup; the next runner command starts one "
                "(none with RUNNER_RESIDENT=0)"
            )
        raise SystemExit(1)


@resident.command()
def stop() -> None:
    """Stop every resident server of this installation; commands run in their own processes until the
    next one starts."""
    stopped = answering("stop")
    for server in stopped:
        click.echo(f"resident server {server['pid']} stopped")
    if not stopped:
        click.echo("no resident server was running")
