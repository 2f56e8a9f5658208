"""What every command starts from: the run service, with its warnings said once on stderr, and the time."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from runner.service import RunService


def service() -> RunService:
    from runner.config import load_settings
    from runner.service import RunService

    said: set[str] = set()

    def warn(message: str) -> None:
        if message not in said:  # once per command, however often it is met
            said.add(message)
            click.echo(f"warning: {message}", err=True)

    from runner.cli.params import chosen_context

    return RunService(load_settings(), warn=warn, context=chosen_context())


def now() -> float:
    import time

    return time.time()
