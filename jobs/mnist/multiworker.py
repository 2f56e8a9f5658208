"""MNIST trained by several workers together, under tf.distribute.MultiWorkerMirroredStrategy.

The same model and data as mnist.train; what changes is what multi-worker training needs
(https://www.tensorflow.org/tutorials/distribute/multi_worker_with_ctl):

- every worker runs this same script; runner gives each one TF_CONFIG, the addresses of all workers
  and its own index, and the strategy reads it (create it first, before any other TensorFlow call);
- the model and optimizer are made inside ``strategy.scope()``, so their variables are mirrored on every
  worker; each step, every worker computes gradients on its share of the global batch and the strategy
  sums them across workers before the optimizer applies them, so all workers keep the same weights;
- the data set is split among the workers (tf.data shards it by worker), and the loss of each example is
  divided by the global batch size, so the sum over workers is the mean over the global batch;
- worker 0, the chief, writes the model and the metrics into $RUNNER_OUTPUTS, which runner keeps as the
  run's outputs; the other workers leave a small metrics file, kept under workers/<index>/.

The training loop is written out (what ``model.fit`` does, one step at a time) because Keras 3's ``fit``
cannot yet run under MultiWorkerMirroredStrategy: it fails before the first step when there is more than
one worker (https://github.com/keras-team/keras/issues/20585; seen with Keras 3.15 and TensorFlow 2.21).

Run it with runner (two workers):

    runner submit jobs/mnist-multiworker/job.yaml

By hand, in two shells in jobs/, each with its own index:

    export TF_CONFIG='{"cluster": {"worker": ["localhost:12345", "localhost:12346"]},
                       "task": {"type": "worker", "index": 0}}'   # index 1 in the other shell
    python -m mnist.multiworker --epochs 3
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from runner.metrics.callback import RunnerMetrics

from common import kit
from mnist.train import build_model, load_data, parse_args


@dataclass
class History:
    """The per-epoch metrics, shaped like keras.callbacks.History (what kit.finish reads)."""

    history: dict[str, list[float]] = field(default_factory=dict)
    epoch: list[int] = field(default_factory=list)

    def add(self, epoch: int, metrics: dict[str, float]) -> None:
        self.epoch.append(epoch)
        for name, value in metrics.items():
            self.history.setdefault(name, []).append(value)


def worker_index() -> int:
    """This worker's index from TF_CONFIG (0 when there is none: a single worker is the chief)."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    return int(config.get("task", {}).get("index", 0))


def scores(model: keras.Model, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Loss and accuracy on (x, y), computed by this worker alone: its weights are every worker's."""
    logits = model.predict(x, batch_size=256, verbose=0)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits)
    return {"loss": float(loss), "accuracy": float(np.mean(np.argmax(logits, axis=1) == y))}


def train(
    strategy: tf.distribute.Strategy,
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    *,
    epochs: int,
    global_batch: int,
    seed: int,
    live: RunnerMetrics | None = None,
) -> tuple[keras.Model, History]:
    """Train the MNIST model across the strategy's workers; return it and its per-epoch metrics."""
    x_train, y_train, x_val, y_val = data
    with strategy.scope():  # variables made here are mirrored on every worker
        model = build_model()
        optimizer = keras.optimizers.Adam()
        per_example_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
    batches = (
        tf.data.Dataset.from_tensor_slices((x_train, y_train))
        .shuffle(len(x_train), seed=seed, reshuffle_each_iteration=True)
        .batch(global_batch, drop_remainder=True)  # every worker takes the same number of steps
    )
    distributed = strategy.experimental_distribute_dataset(batches)  # each worker gets its share

    @tf.function
    def train_step(batch: Any) -> tf.Tensor:
        def step(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                logits = model(x, training=True)
                loss = tf.nn.compute_average_loss(per_example_loss(y, logits), global_batch_size=global_batch)
            gradients = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(
                zip(gradients, model.trainable_variables, strict=True)
            )  # summed across workers
            return loss

        return strategy.reduce("SUM", strategy.run(step, args=batch), axis=None)

    history = History()
    for epoch in range(epochs):
        started = time.monotonic()
        losses = [float(train_step(batch)) for batch in distributed]
        metrics = scores(model, x_train, y_train) | {"loss": float(np.mean(losses))}
        metrics |= {f"val_{name}": value for name, value in scores(model, x_val, y_val).items()}
        history.add(epoch, metrics)
        if live is not None:  # the curves of `runner metrics` and `runner ui`, as fit's callback writes them
            live.on_epoch_end(epoch, metrics)
        kit.log(
            f"epoch {epoch + 1}/{epochs}: "
            + " ".join(f"{name}={value:.4f}" for name, value in metrics.items())
            + f" ({time.monotonic() - started:.1f}s, {len(losses)} steps)"
        )
    return model, history


def main(argv: Sequence[str] | None = None) -> int:
    started = time.monotonic()
    # First: the strategy starts this worker's server and waits for the others before any op runs.
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    args = parse_args(argv)
    index = worker_index()
    out = kit.start("mnist-multiworker", args)
    kit.log(f"worker {index}: {strategy.num_replicas_in_sync} replicas train in sync")

    (x_train, y_train), (x_test, y_test), source = load_data(args.dataset, args.download_timeout, args.seed)
    x_train, y_train = x_train[: args.max_train], y_train[: args.max_train]
    x_test, y_test = x_test[: args.max_test], y_test[: args.max_test]
    x_train = x_train.astype(np.float32) / 255.0  # pixels 0..255 to 0..1, as in mnist.train
    x_test = x_test.astype(np.float32) / 255.0
    n_train, n_val = kit.split_sizes(len(x_train), args.validation_split)
    kit.log(f"data: {source}, {n_train} train / {n_val} validation / {len(x_test)} test images")

    global_batch = args.batch_size * strategy.num_replicas_in_sync
    kit.log(f"training with a global batch of {global_batch} ({args.batch_size} per worker)")
    data = (x_train[:n_train], y_train[:n_train], x_train[n_train:], y_train[n_train:])
    live = RunnerMetrics() if index == 0 else None
    model, history = train(
        strategy, data, epochs=args.epochs, global_batch=global_batch, seed=args.seed, live=live
    )
    if live is not None:
        live.on_train_end()
    test_metrics = scores(model, x_test, y_test)
    if index != 0:  # the chief keeps the model; this worker's weights are the same
        kit.write_metrics(out, {"job": "mnist-multiworker", "worker": index, "test": test_metrics})
        loss, accuracy = test_metrics["loss"], test_metrics["accuracy"]
        kit.log(f"worker {index} done: test loss={loss:.4f} accuracy={accuracy:.4f}")
        return 0
    kit.finish(
        job="mnist-multiworker",
        model=model,
        history=history,
        out=out,
        args=args,
        test_metrics=test_metrics,
        data_source=source,
        reference_x=x_test,
        samples={"train": n_train, "val": n_val, "test": len(x_test)},
        started=started,
        extra={"workers": strategy.num_replicas_in_sync, "global_batch_size": global_batch},
    )
    return 0


if __name__ == "__main__":
    sys.exit(kit.run(main))
