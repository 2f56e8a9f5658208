"""A stand-in training job for the dashboard's tests: standard library only, driven by marker files.

    python training.py MARKS EPOCHS

It announces EPOCHS epochs, then for each epoch N waits for MARKS/epoch-N (when MARKS is not "-"),
writes its metrics line to $RUNNER_METRICS (or under $RUNNER_OUTPUTS, as the Keras callback does), and
logs a line that looks like HTML. At the end it saves a small model file into the outputs.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main() -> None:
    marks, epochs = sys.argv[1], int(sys.argv[2])
    outputs = Path(os.environ["RUNNER_OUTPUTS"])
    target = Path(os.environ.get("RUNNER_METRICS") or outputs / "telemetry" / "training.jsonl")
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a") as metrics:
        metrics.write(
            json.dumps({"kind": "begin", "time": time.time(), "epochs": epochs, "steps": 10}) + "\n"
        )
        metrics.flush()
        print("<script>alert(1)</script> training starts", flush=True)
        for epoch in range(1, epochs + 1):
            while marks != "-" and not (Path(marks) / f"epoch-{epoch}").exists():
                time.sleep(0.05)
            loss = 1.0 / epoch
            line = {"loss": loss, "val_loss": loss * 1.1, "accuracy": 1 - loss / 2}
            metrics.write(
                json.dumps({"kind": "epoch", "time": time.time(), "epoch": epoch, "metrics": line}) + "\n"
            )
            metrics.flush()
            print(f"epoch {epoch}: loss {loss:.4f}", flush=True)
    (outputs / "model.bin").write_bytes(bytes(range(256)) * 64)


if __name__ == "__main__":
    main()
