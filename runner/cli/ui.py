"""`runner ui`: the read-only web dashboard (runner.ui), served by uvicorn until Ctrl-C."""

from __future__ import annotations

import click

from runner.errors import UserError

DEFAULT_PORT = 8765


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--token",
    envvar="RUNNER_UI_TOKEN",
    help="The token asked of every request (default: a new one, when bound beyond loopback).",
)
def ui(host: str, port: int, token: str | None) -> None:
    """A read-only web dashboard: runs, their logs, training curves, GPU/CPU/memory and artifacts; schedules.

    Bound to 127.0.0.1 by default: only this machine reaches it. Bound to any other address it asks
    every request for a token, printed here at start (or --token / RUNNER_UI_TOKEN).
    """
    import socket

    import uvicorn

    from runner.cli.session import service
    from runner.ui import access
    from runner.ui.app import create_app
    from runner.ui.context import Dashboard, local_schedules

    loopback = access.is_loopback(host)
    if not loopback and token is not None and len(token) < 16:
        raise UserError(
            "--token is too short to guard a dashboard others can reach", hint="use 16 characters or more"
        )
    if not loopback and token is None:
        token = access.new_token()

    board = Dashboard(runs=service, schedules=local_schedules)
    app = create_app(
        board,
        token=token,
        allowed_hosts=[*access.LOOPBACK_NAMES] if loopback else None,
    )
    shown = socket.gethostname() if host in ("0.0.0.0", "::") else f"[{host}]" if ":" in host else host
    address = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    click.echo(f"runner ui: {address} (read-only; Ctrl-C stops it)", err=True)
    if token and loopback:
        click.echo("runner ui: every request needs the token above", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
