"""The `runner` console script: the command goes to the resident server (runner.cli.resident) of this
user, installation and cgroup when one answers; otherwise, and always with RUNNER_RESIDENT=0, it runs in
this process (starting a server for the next command, unless RUNNER_RESIDENT=0)."""

from __future__ import annotations

import os
import sys

OFF = ("0", "false", "no", "off")


def resident(args: list[str]) -> bool:
    """Whether the command args goes to a resident server: unless RUNNER_RESIDENT says 0, false, no or
    off, or it is `runner resident ...`, which asks the servers themselves (and must not start one)."""
    return os.environ.get("RUNNER_RESIDENT", "").strip().lower() not in OFF and args[:1] != ["resident"]


def main() -> None:
    if resident(sys.argv[1:]):
        from runner.cli.resident.client import forward, start_server

        code = forward(sys.argv[1:])
        if isinstance(code, int):
            os._exit(code)  # this process printed nothing and holds nothing: the command's did
        if code is None:  # none serves (or one of older code): one for the next command
            start_server()
    from runner.cli.main import main as run_here

    run_here()


if __name__ == "__main__":
    main()
