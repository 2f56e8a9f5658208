"""The `runner` console script: with RUNNER_RESIDENT=1 the command goes to the resident server
(runner.cli.resident) when one answers; otherwise, and always without it, it runs in this process."""

from __future__ import annotations

import os
import sys

OFF = ("", "0", "false", "no", "off")


def main() -> None:
    if os.environ.get("RUNNER_RESIDENT", "").strip().lower() not in OFF:
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
