"""Live telemetry of a run: training metrics a job writes, and the machine's side the agent samples.

Both are JSON lines under the run's outputs, so they are collected with it and readable while it runs:

    <outputs>/telemetry/training.jsonl   what the job writes to $RUNNER_METRICS (callback.RunnerMetrics)
    <outputs>/telemetry/system.jsonl     the agent's samples of the run's CPU, memory and GPUs

In the store they are `<job>/<run-id>/outputs/telemetry/...`; the agent uploads them every few seconds
while the run goes on, and collection copies them with everything else at its end.

Everything in this package but callback.py (which the job imports, with Keras) is standard library
only: it ships in job images with the agent, installed without dependencies.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

METRICS_VARIABLE = "RUNNER_METRICS"
TELEMETRY_DIR = "telemetry"
TRAINING_FILE = "training.jsonl"
SYSTEM_FILE = "system.jsonl"
TRAINING_PATH = f"{TELEMETRY_DIR}/{TRAINING_FILE}"  # relative to the run's outputs
SYSTEM_PATH = f"{TELEMETRY_DIR}/{SYSTEM_FILE}"


def training_file(env: Mapping[str, str] | None = None) -> Path | None:
    """Where a job writes its training metrics: $RUNNER_METRICS, else under $RUNNER_OUTPUTS; None outside
    a run (then nothing is written)."""
    env = os.environ if env is None else env
    if env.get(METRICS_VARIABLE, "").strip():
        return Path(env[METRICS_VARIABLE])
    if env.get("RUNNER_OUTPUTS", "").strip():
        return Path(env["RUNNER_OUTPUTS"]) / TRAINING_PATH
    return None
