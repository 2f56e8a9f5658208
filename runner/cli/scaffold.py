"""The files `runner init` writes: a job that validates and runs as generated. Pure text."""

from __future__ import annotations

JOB_YAML = """\
# A runner job. Check it with `runner validate job.yaml`; run it with `runner submit job.yaml`.
# Every field is described in runner's README ("Manifest reference").
apiVersion: runner/v1
kind: Job
metadata:
  name: {name}  # lowercase letters, digits and '-'; runs are named {name}-xxxxxx
  labels: {{team: my-team}}                    # for `runner list -l team=my-team`
spec:
  image:
    base: tensorflow/tensorflow:2.21.0-gpu   # the docker backend builds the job's image on this one
    requirements: requirements.txt           # pip installs these into the image
    context: .                               # this directory, less what .dockerignore leaves out
  command: [python, train.py, --epochs, "3"]
  env:
    TF_CPP_MIN_LOG_LEVEL: "2"                # quieter TensorFlow
  resources: {{gpu: 0, cpu: 1, memory: 2Gi}}   # gpu: 1 (and gpuType: H100) on a GPU machine or cluster
  outputs: {{path: /outputs}}                  # what train.py writes here is collected ($RUNNER_OUTPUTS)
  retries: 0                                 # extra attempts after a failure
  timeout: 30m
"""

TRAIN_PY = '''\
"""A small Keras model on synthetic data: replace the data and the model with your own.

Everything written under $RUNNER_OUTPUTS is collected with the run (`runner artifacts {name}`).
Run it here with `python train.py`: it then writes to ./outputs.
"""

import argparse
import json
import os
from pathlib import Path

import numpy as np
import tensorflow as tf


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    outputs = Path(os.environ.get("RUNNER_OUTPUTS", "outputs"))
    outputs.mkdir(parents=True, exist_ok=True)

    rng = np.random.default_rng(0)  # a learnable toy problem: is the weighted sum positive?
    x = rng.normal(size=(2048, 8)).astype("float32")
    y = (x @ rng.normal(size=8) > 0).astype("float32")

    model = tf.keras.Sequential(
        [
            tf.keras.Input(shape=(8,)),
            tf.keras.layers.Dense(16, activation="relu"),
            tf.keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=args.epochs, validation_split=0.2, verbose=2)

    model.save(outputs / "model.keras")
    metrics = {{key: float(values[-1]) for key, values in history.history.items()}}
    (outputs / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\\n")
    print("saved", outputs / "model.keras", metrics)


if __name__ == "__main__":
    main()
'''

REQUIREMENTS_TXT = """\
# What train.py imports beyond the base image (TensorFlow and NumPy come with it), one per line:
# scikit-learn>=1.4
"""

DOCKERIGNORE = """\
# Left out of the job's image (and of the process backend's copy of this directory)
outputs/
__pycache__/
*.pyc
.venv/
.git/
"""


def files(name: str) -> dict[str, str]:
    """The files of a new job named name, by file name."""
    return {
        "job.yaml": JOB_YAML.format(name=name),
        "train.py": TRAIN_PY.format(name=name),
        "requirements.txt": REQUIREMENTS_TXT,
        ".dockerignore": DOCKERIGNORE,
    }
