"""Load the models an example job saved, in every format, and check what they predict.

Every job in ``jobs/`` writes ``reference.npz`` next to its models: ``x``, a small input
batch, and ``y``, what the trained model predicted for it. :func:`check_artifacts` reloads
each saved format and asserts it reproduces ``y``; :func:`predict_with_saved` is the
loader behind it, usable on its own.

TensorFlow, Keras and ONNX Runtime are imported only when a model is actually loaded,
so importing this module is cheap.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "ARTIFACTS",
    "FORMATS",
    "artifact_paths",
    "check_artifacts",
    "load_reference",
    "predict_with_saved",
]

# Where each format lives inside a job's outputs directory (mirrors jobs/common/kit.py).
ARTIFACTS: Final[Mapping[str, str]] = {
    "keras": "model.keras",
    "h5": "model.h5",
    "savedmodel": "saved_model",
    "onnx": "model.onnx",
}
FORMATS: Final[tuple[str, ...]] = tuple(ARTIFACTS)
REFERENCE_FILE: Final = "reference.npz"
METRICS_FILE: Final = "metrics.json"


def _normalise_formats(formats: str | Iterable[str]) -> list[str]:
    names = formats.split(",") if isinstance(formats, str) else list(formats)
    result: list[str] = []
    for raw in names:
        name = raw.strip().lower()
        if not name:
            continue
        if name not in ARTIFACTS:
            raise ValueError(f"unknown model format {raw!r}; expected one of {', '.join(FORMATS)}")
        if name not in result:
            result.append(name)
    return result


def _single_output(outputs: Any) -> NDArray[np.float32]:
    """A model's one output as a NumPy array, whether it came as a tensor, list or dict."""
    if isinstance(outputs, Mapping):
        if len(outputs) != 1:
            raise ValueError(f"expected one output, got {sorted(outputs)}")
        outputs = next(iter(outputs.values()))
    elif isinstance(outputs, list | tuple):
        if len(outputs) != 1:
            raise ValueError(f"expected one output, got {len(outputs)}")
        outputs = outputs[0]
    return np.asarray(outputs, dtype=np.float32)


def predict_with_saved(path: Path, fmt: str, x: ArrayLike) -> NDArray[np.float32]:
    """Load the model saved at ``path`` in format ``fmt`` and return its predictions for ``x``.

    ``fmt`` is one of ``keras`` and ``h5`` (``keras.models.load_model``), ``savedmodel``
    (``tf.saved_model.load`` and its ``serving_default`` signature, as TF Serving would)
    or ``onnx`` (ONNX Runtime on the CPU). Models must have a single input and output.
    """
    path = Path(path)
    batch = np.asarray(x, dtype=np.float32)
    if not path.exists():
        raise FileNotFoundError(f"no {fmt} model at {path}")

    if fmt in ("keras", "h5"):
        import keras

        model = keras.models.load_model(path, compile=False)
        return _single_output(model(batch, training=False))

    if fmt == "savedmodel":
        import tensorflow as tf

        loaded = tf.saved_model.load(str(path))
        signature = loaded.signatures["serving_default"]
        _, inputs = signature.structured_input_signature
        if len(inputs) != 1:
            raise ValueError(f"expected one input in {path}, got {sorted(inputs)}")
        (name,) = inputs
        return _single_output(signature(**{name: tf.constant(batch)}))

    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        inputs = session.get_inputs()
        if len(inputs) != 1:
            # E.g. constants the converter left as graph inputs instead of freezing them.
            raise ValueError(f"expected one input in {path}, got {[i.name for i in inputs]}")
        return _single_output(session.run(None, {inputs[0].name: batch}))

    raise ValueError(f"unknown model format {fmt!r}; expected one of {', '.join(FORMATS)}")


def load_reference(outputs_dir: Path) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """``(x, y)`` from ``outputs_dir/reference.npz``."""
    with np.load(Path(outputs_dir) / REFERENCE_FILE) as reference:
        return reference["x"].astype(np.float32), reference["y"].astype(np.float32)


def artifact_paths(outputs_dir: Path, formats: str | Iterable[str]) -> dict[str, Path]:
    """``{format: path}`` of each saved model in ``outputs_dir``."""
    return {fmt: Path(outputs_dir) / ARTIFACTS[fmt] for fmt in _normalise_formats(formats)}


def check_artifacts(
    outputs_dir: Path,
    formats: str | Iterable[str] | None = None,
    *,
    atol: float = 1e-4,
    rtol: float = 1e-4,
) -> dict[str, float]:
    """Assert every saved format in ``outputs_dir`` reproduces the predictions in reference.npz.

    ``formats`` is a list or a comma-separated string (``"keras,h5,onnx"``); by default
    the ``formats`` the job recorded in its metrics.json. Returns the largest absolute
    difference per format, for logs. Raises ``AssertionError`` on a mismatch.
    """
    outputs_dir = Path(outputs_dir)
    if formats is None:
        recorded = json.loads((outputs_dir / METRICS_FILE).read_text())
        formats = list(recorded["formats"])
    x, expected = load_reference(outputs_dir)
    assert len(x) > 0, f"{outputs_dir / REFERENCE_FILE} holds no samples"
    assert len(x) == len(expected), f"reference x has {len(x)} samples but y has {len(expected)}"

    differences: dict[str, float] = {}
    wanted = artifact_paths(outputs_dir, formats)
    assert wanted, "no formats to check"
    for fmt, path in wanted.items():
        assert path.exists(), f"{fmt}: {path} is missing"
        predicted = predict_with_saved(path, fmt, x)
        assert predicted.shape == expected.shape, (
            f"{fmt}: predictions have shape {predicted.shape}, reference {expected.shape}"
        )
        np.testing.assert_allclose(
            predicted,
            expected,
            atol=atol,
            rtol=rtol,
            err_msg=f"{fmt} model at {path} does not reproduce reference.npz",
        )
        differences[fmt] = float(np.max(np.abs(predicted - expected)))
    return differences
