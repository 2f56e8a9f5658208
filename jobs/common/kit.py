"""The plumbing every example job shares, so each train.py can stay about the model.

A job built on this kit follows the runner contract:

* everything worth keeping goes to ``$RUNNER_OUTPUTS`` (``./outputs`` when run by hand);
* inputs declared in the manifest arrive as ``$RUNNER_INPUT_<NAME>`` directories;
* logs are plain lines on stdout, and the exit status says whether the job worked.

At the end of training :func:`finish` writes the same set of files for every job:

========================  ===============================================================
``metrics.json``          final train/val metrics, test metrics, epochs, data source, ...
``training_curves.png``   loss and metrics per epoch, training and validation
``model.keras``           native Keras format (always)
``model.h5``              legacy HDF5 format (always)
``saved_model/``          TensorFlow SavedModel, when ``--formats`` has ``savedmodel``
``model.onnx``            ONNX, when ``--formats`` has ``onnx``
``reference.npz``         ``x``: a small fixed input batch, ``y``: the model's predictions
========================  ===============================================================

``reference.npz`` lets anyone reload any saved format later and check that it predicts
exactly what the trained model predicted.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

# Plots are written to files: never try to open a window (a cluster node has no display).
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

# Model formats a job can save, in the order they are written, and the file (or directory)
# each one goes to inside the outputs directory.
ARTIFACTS: dict[str, str] = {
    "keras": "model.keras",
    "h5": "model.h5",
    "savedmodel": "saved_model",
    "onnx": "model.onnx",
}
ALWAYS_SAVED = ("keras", "h5")
DEFAULT_FORMATS = ",".join(ALWAYS_SAVED)
_ALIASES = {"saved_model": "savedmodel", "tf_saved_model": "savedmodel", "hdf5": "h5"}

METRICS_FILE = "metrics.json"
CURVES_FILE = "training_curves.png"
REFERENCE_FILE = "reference.npz"
REFERENCE_SIZE = 16

# Exit status for a job that stops on a problem it can explain (bad input, bad arguments).
EXIT_JOB_ERROR = 2


class JobError(Exception):
    """A problem the job can explain to its user: reported without a traceback, exit status 2."""


def log(message: str) -> None:
    """Print one progress line, flushed at once so the runner streams it as it happens."""
    print(f"==> {message}", flush=True)


def run(main: Callable[[], int]) -> int:
    """Run a job's ``main`` and turn a :class:`JobError` into a one-line message and exit 2."""
    try:
        return main()
    except JobError as error:
        print(f"ERROR: {error}", file=sys.stderr, flush=True)
        return EXIT_JOB_ERROR


# --------------------------------------------------------------------------- arguments


def base_parser(description: str, *, epochs: int, batch_size: int) -> argparse.ArgumentParser:
    """An argument parser with the options every job has; jobs add their own to it."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--epochs", type=positive_int, default=epochs, help="training epochs")
    parser.add_argument("--batch-size", type=positive_int, default=batch_size, help="batch size")
    parser.add_argument(
        "--formats",
        type=parse_formats,
        default=DEFAULT_FORMATS,
        help=f"comma-separated model formats to save, from {','.join(ARTIFACTS)} "
        f"({' and '.join(ALWAYS_SAVED)} are always saved)",
    )
    parser.add_argument("--seed", type=int, default=42, help="seed for every random number generator")
    parser.add_argument(
        "--outputs",
        default=None,
        help="where to write results (default: $RUNNER_OUTPUTS, or ./outputs when that is unset)",
    )
    return parser


def positive_int(text: str) -> int:
    """argparse type: an integer greater than zero."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def fraction(text: str) -> float:
    """argparse type: a number strictly between 0 and 1 (a share of the data to hold out)."""
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got {text}")
    return value


def split_sizes(n: int, validation_split: float) -> tuple[int, int]:
    """How ``fit(validation_split=...)`` divides ``n`` samples: (train, validation).

    Keras trains on the first ``floor(n * (1 - split))`` samples and validates on the rest.
    """
    n_train = math.floor(n * (1.0 - validation_split))
    return n_train, n - n_train


def parse_formats(text: str | Iterable[str]) -> list[str]:
    """Turn ``"keras,onnx"`` into ``["keras", "h5", "onnx"]``: known names, canonical order.

    ``keras`` and ``h5`` are always included. Unknown names raise ``argparse.ArgumentTypeError``
    (which argparse reports as a usage error).
    """
    names = text.split(",") if isinstance(text, str) else list(text)
    wanted = set(ALWAYS_SAVED)
    for raw in names:
        name = raw.strip().lower()
        if not name:
            continue
        name = _ALIASES.get(name, name)
        if name not in ARTIFACTS:
            raise argparse.ArgumentTypeError(
                f"unknown model format {raw.strip()!r}; choose from {', '.join(ARTIFACTS)}"
            )
        wanted.add(name)
    return [name for name in ARTIFACTS if name in wanted]


# --------------------------------------------------------------------------- environment


def outputs_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The directory for results: ``override``, else ``$RUNNER_OUTPUTS``, else ``./outputs``."""
    path = Path(override or os.environ.get("RUNNER_OUTPUTS") or "outputs")
    path.mkdir(parents=True, exist_ok=True)
    return path


def input_env_var(name: str) -> str:
    """The variable the runner sets for the manifest input ``name``: ``cells`` -> ``RUNNER_INPUT_CELLS``."""
    return "RUNNER_INPUT_" + name.upper().replace("-", "_")


def input_dir(name: str) -> Path | None:
    """The directory of the manifest input ``name``, or None when the runner did not provide one."""
    value = os.environ.get(input_env_var(name))
    return Path(value) if value else None


def start(job: str, args: argparse.Namespace) -> Path:
    """Seed everything, say what we run on, and return the outputs directory."""
    import keras
    import tensorflow as tf

    out = outputs_dir(args.outputs)
    # One call seeds Python's `random`, NumPy and TensorFlow: same seed, same run
    # (up to the nondeterminism of some GPU kernels).
    keras.utils.set_random_seed(args.seed)
    gpus = tf.config.list_physical_devices("GPU")
    log(
        f"job {job}: TensorFlow {tf.__version__}, Keras {keras.__version__}, "
        f"Python {platform.python_version()}, "
        f"{len(gpus)} GPU(s){' ' + ', '.join(g.name for g in gpus) if gpus else ' (training on CPU)'}"
    )
    log(
        f"settings: epochs={args.epochs} batch_size={args.batch_size} seed={args.seed} "
        f"formats={','.join(args.formats)} outputs={out}"
    )
    return out


# --------------------------------------------------------------------------- results


def final_metrics(history: Any) -> tuple[dict[str, float], dict[str, float]]:
    """The last epoch's training and validation metrics from a ``keras.callbacks.History``."""
    train: dict[str, float] = {}
    val: dict[str, float] = {}
    for key, values in history.history.items():
        if not values:
            continue
        if key.startswith("val_"):
            val[key.removeprefix("val_")] = float(values[-1])
        else:
            train[key] = float(values[-1])
    train.pop("learning_rate", None)
    return train, val


def plot_history(history: Any, path: Path, title: str) -> Path:
    """One panel per metric (loss first), training and validation curves against the epoch."""
    curves = history.history
    names = [key for key in curves if not key.startswith("val_") and key != "learning_rate"]
    names.sort(key=lambda key: (key != "loss", key))
    epochs = np.arange(1, len(curves[names[0]]) + 1) if names else np.arange(0)
    ncols = min(3, max(len(names), 1))
    nrows = math.ceil(max(len(names), 1) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.4 * nrows + 0.4), squeeze=False)
    for ax in axes.flat[len(names) :]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, names, strict=False):
        ax.plot(epochs, curves[name], marker="o", label="train")
        if f"val_{name}" in curves:
            ax.plot(epochs, curves[f"val_{name}"], marker="o", label="validation")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


@contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """Silence chatty library loggers (and NumPy FutureWarnings from tf2onnx) for a moment."""
    saved = {name: logging.getLogger(name).level for name in loggers}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for name in loggers:
            logging.getLogger(name).setLevel(logging.ERROR)
        try:
            yield
        finally:
            for name, level in saved.items():
                logging.getLogger(name).setLevel(level)


def export_onnx(model: Any, path: Path, saved_model: Path | None = None) -> Path:
    """Convert ``model`` to ONNX at ``path`` by way of a TensorFlow SavedModel.

    This is what ``python -m tf2onnx.convert --saved-model DIR`` does. The shorter
    ``model.export(path, format="onnx")`` (tf2onnx on a traced function) works for many
    models, but it turns tensors a layer keeps as constants, such as the mean and variance
    of ``keras.layers.Normalization``, into extra graph inputs that nobody feeds. Loading
    the SavedModel freezes them into the graph. ``saved_model`` reuses an export already
    on disk; otherwise one is made in a temporary directory.
    """
    import tf2onnx
    from tf2onnx import tf_loader

    with tempfile.TemporaryDirectory() as scratch, _quiet("absl", "tensorflow", "tf2onnx"):
        if saved_model is None:
            saved_model = Path(scratch) / "saved_model"
            model.export(str(saved_model), format="tf_saved_model", verbose=False)
        graph_def, inputs, outputs, _tables, renames = tf_loader.from_saved_model(
            str(saved_model),
            None,
            None,
            tag="serve",
            signatures=["serving_default"],
            return_initialized_tables=True,
            return_tensors_to_rename=True,
        )
        onnx_model, _ = tf2onnx.convert.from_graph_def(
            graph_def,
            name=model.name,
            input_names=inputs,
            output_names=outputs,
            tensors_to_rename=renames,
            output_path=str(path),
        )
    fed = [tensor.name for tensor in onnx_model.graph.input]
    if len(fed) != len(model.inputs):
        raise RuntimeError(f"ONNX export of {model.name} has inputs {fed}; expected {len(model.inputs)}")
    return path


def save_models(model: Any, out: Path, formats: Sequence[str]) -> dict[str, str]:
    """Save ``model`` in each of ``formats``; return ``{format: path relative to out}``."""
    saved: dict[str, str] = {}
    for fmt in parse_formats(formats):
        path = out / ARTIFACTS[fmt]
        if fmt == "keras":
            model.save(path)
        elif fmt == "h5":
            # The HDF5 format of Keras 2, still read by many tools. Keras 3 logs a
            # "legacy format" warning on each save; we save .keras as well, so hush it.
            with _quiet("absl"):
                model.save(path)
        elif fmt == "savedmodel":
            # An inference-only TensorFlow SavedModel with `serve` and `serving_default`
            # endpoints: what TF Serving and tf.saved_model.load use.
            model.export(str(path), format="tf_saved_model", verbose=False)
        elif fmt == "onnx":
            reuse = out / ARTIFACTS["savedmodel"] if "savedmodel" in saved else None
            export_onnx(model, path, saved_model=reuse)
        saved[fmt] = ARTIFACTS[fmt]
        log(f"saved {fmt:<10} -> {path}")
    return saved


def write_reference(model: Any, x: np.ndarray, out: Path) -> Path:
    """Save a fixed input batch and the trained model's predictions on it to ``reference.npz``.

    Any saved format, reloaded later, must reproduce ``y`` from ``x`` (up to float round-off).
    """
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(model(x, training=False), dtype=np.float32)
    path = out / REFERENCE_FILE
    np.savez(path, x=x, y=y)
    return path


def _jsonable(value: Any) -> Any:
    """NumPy scalars/arrays to plain Python; NaN and infinities to null (JSON has neither)."""
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_metrics(out: Path, payload: Mapping[str, Any]) -> Path:
    """Write ``metrics.json`` (indented, keys in a stable order)."""
    path = out / METRICS_FILE
    path.write_text(json.dumps(_jsonable(payload), indent=2, sort_keys=True) + "\n")
    return path


def _format(metrics: Mapping[str, float]) -> str:
    return " ".join(f"{key}={value:.4f}" for key, value in metrics.items())


def finish(
    *,
    job: str,
    model: Any,
    history: Any,
    out: Path,
    args: argparse.Namespace,
    test_metrics: Mapping[str, float],
    data_source: str,
    reference_x: np.ndarray,
    samples: Mapping[str, int],
    started: float,
    extra: Mapping[str, Any] | None = None,
    extra_artifacts: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Write everything a job leaves behind (see the module docstring); return the metrics.

    ``extra`` adds job-specific entries to metrics.json; ``extra_artifacts`` names other
    files the job wrote into ``out`` (e.g. ``{"predictions": "predictions.png"}``).
    """
    import keras
    import tensorflow as tf

    train, val = final_metrics(history)
    plot_history(history, out / CURVES_FILE, f"{job}: training curves")
    log(f"saved plot       -> {out / CURVES_FILE}")
    artifacts = save_models(model, out, args.formats)
    write_reference(model, reference_x[:REFERENCE_SIZE], out)
    log(f"saved reference  -> {out / REFERENCE_FILE} ({min(len(reference_x), REFERENCE_SIZE)} samples)")
    payload: dict[str, Any] = {
        "job": job,
        "data_source": data_source,
        "epochs": len(history.epoch),
        "train": train,
        "val": val,
        "test": dict(test_metrics),
        "history": history.history,
        "samples": dict(samples),
        "batch_size": args.batch_size,
        "seed": args.seed,
        "formats": list(args.formats),
        "artifacts": {
            **artifacts,
            "curves": CURVES_FILE,
            "reference": REFERENCE_FILE,
            **(extra_artifacts or {}),
        },
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "elapsed_s": round(time.monotonic() - started, 2),
    }
    payload.update(extra or {})
    write_metrics(out, payload)
    log(f"final train: {_format(train)}")
    log(f"final val:   {_format(val)}")
    log(f"test:        {_format(test_metrics)}")
    log(f"wrote {out / METRICS_FILE}; done in {payload['elapsed_s']:.1f}s")
    return payload
