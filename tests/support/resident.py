"""A resident runner (runner.cli.resident) for benchmarks: started through a first command, as a user's
is by default, waited for until it answers, stopped afterwards."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

ENTRY = [sys.executable, "-m", "runner.cli.entry"]  # what the console script runs


@contextlib.contextmanager
def resident_server(env: dict[str, str]) -> Iterator[dict[str, str]]:
    """env for commands that go to a resident server of their own (RUNNER_RESIDENT_ADDRESS), which
    answers from the first of them on; stopped on leaving."""
    served = {
        **env,
        "RUNNER_RESIDENT_ADDRESS": f"runner-bench-{uuid.uuid4().hex[:12]}",
        "RUNNER_RESIDENT_IDLE": "900",
    }
    served.pop("RUNNER_RESIDENT", None)  # the console script's default
    subprocess.run([*ENTRY, "--help"], env=served, check=True, capture_output=True)  # starts it
    for _ in range(300):
        asked = subprocess.run([*ENTRY, "resident", "status"], env=served, check=False, capture_output=True)
        if asked.returncode == 0:
            break
        time.sleep(0.1)
    else:
        raise SystemExit("the resident server did not start")
    try:
        yield served
    finally:
        subprocess.run([*ENTRY, "resident", "stop"], env=served, check=False, capture_output=True)
