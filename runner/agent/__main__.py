"""`python -m runner.agent -- COMMAND [ARGS...]`: the entrypoint of a job's container."""

from __future__ import annotations

import sys

from runner.agent.main import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
