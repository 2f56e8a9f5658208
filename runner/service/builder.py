"""The detached builder of `runner submit -d`: ``python -P -m runner.service.builder REQUEST.json`` builds
and launches the run that submit recorded as building (runner.service.building), its output going to the
run's local build log."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from runner.backends.identity import start_time
from runner.clock import SYSTEM_CLOCK
from runner.config import load_settings
from runner.errors import reason_of
from runner.records import RunState
from runner.service.building import Builds, plan_of
from runner.service.runs import RunService


def main(argv: list[str]) -> int:
    """Build and launch the run REQUEST names, unless it was cancelled before this process got going."""
    request_path = Path(argv[0])
    request = json.loads(request_path.read_text())
    request_path.unlink()
    plan = plan_of(request)
    service = RunService(load_settings(), context=request["context"])
    records = service.records
    record = records.get(plan.run_id)
    if record.state is not RunState.BUILDING:  # cancelled before this process got going
        return 0
    pid = os.getpid()  # submit -d records it too, once it has started this process
    record = records.update(record.id, supervisor_pid=pid, supervisor_start=start_time(pid))
    backend = service.backend(request["backend"])

    def progress(line: str) -> None:
        print(line, flush=True)

    try:
        Builds(records, service.settings, SYSTEM_CLOCK).build_and_launch(record, plan, backend, progress)
    except KeyboardInterrupt:
        print("cancelled while building", flush=True)
        return 130
    except Exception as error:
        print(f"error: {reason_of(error)}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
