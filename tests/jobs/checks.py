"""Assertions shared by the example-job tests."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
METRICS_KEYS = {
    "job",
    "data_source",
    "epochs",
    "train",
    "val",
    "test",
    "history",
    "samples",
    "batch_size",
    "seed",
    "formats",
    "artifacts",
    "versions",
    "elapsed_s",
}


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG file; fails unless the file really is a PNG."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE, f"{path} is not a PNG (starts with {head[:8]!r})"
    assert head[12:16] == b"IHDR", f"{path}: PNG without an IHDR chunk"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def assert_png(path: Path, min_size: int = 200) -> None:
    assert path.is_file(), f"{path} is missing"
    width, height = png_size(path)
    assert width >= min_size and height >= min_size, f"{path} is only {width}x{height}"


def assert_finite_metrics(metrics: Mapping[str, Any], names: Iterable[str], where: str) -> None:
    """``metrics`` has exactly ``names``, each a finite number; rates lie in [0, 1]."""
    assert set(metrics) == set(names), f"{where}: metrics {sorted(metrics)}, expected {sorted(names)}"
    for name, value in metrics.items():
        assert isinstance(value, float | int) and math.isfinite(value), f"{where}.{name} = {value!r}"
        if name in {"accuracy", "auc", "precision", "recall"}:
            assert 0.0 <= value <= 1.0, f"{where}.{name} = {value} is not a rate"
        if name in {"loss", "mse", "mae", "mape"}:
            assert value >= 0.0, f"{where}.{name} = {value} is negative"


def assert_metrics_file(
    metrics: Mapping[str, Any], *, job: str, epochs: int, train_names: Iterable[str], formats: Iterable[str]
) -> None:
    """The common shape of every job's metrics.json."""
    missing = METRICS_KEYS - set(metrics)
    assert not missing, f"metrics.json lacks {sorted(missing)}"
    assert metrics["job"] == job
    assert metrics["epochs"] == epochs
    names = list(train_names)
    assert_finite_metrics(metrics["train"], names, "train")
    assert_finite_metrics(metrics["val"], names, "val")
    assert_finite_metrics(metrics["test"], names, "test")
    assert metrics["formats"] == list(formats)
    for name, values in metrics["history"].items():
        assert len(values) == epochs, f"history[{name}] has {len(values)} epochs"
    assert all(count > 0 for count in metrics["samples"].values()), metrics["samples"]
