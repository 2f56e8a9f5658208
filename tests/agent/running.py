"""The agent run as a job container runs it: `python -m runner.agent -- sh -c SCRIPT`, with only the
RUNNER_* settings given (none inherited from the test's environment)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def run_agent(
    tmp_path: Path, script: str, settings: Mapping[str, str], *, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """settings: RUNNER_STORE, RUNNER_JOB, RUNNER_RUN_ID and any others; outputs go under tmp_path."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("RUNNER_")}
    env.update(RUNNER_OUTPUTS=str(tmp_path / "outputs"), RUNNER_GRACE="1")
    env.update(settings)
    return subprocess.run(
        [sys.executable, "-m", "runner.agent", "--", "sh", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
