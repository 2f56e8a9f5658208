"""The Keras callback in a real (tiny) fit: epochs and every N batches land in RUNNER_METRICS."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.metrics.lines import epochs, parse

keras = pytest.importorskip("keras")


def fit(path: Path | None, *, every: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from runner.metrics.callback import RunnerMetrics

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    x = np.zeros((32, 2), dtype="float32")
    model.fit(
        x,
        x[:, :1],
        epochs=3,
        batch_size=4,
        validation_split=0.25,
        verbose=0,
        callbacks=[RunnerMetrics(every_n_batches=every, clock=lambda: 5.0)],
    )


@pytest.mark.tensorflow
def test_each_epoch_and_every_n_batches_are_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "telemetry" / "training.jsonl"
    monkeypatch.setenv("RUNNER_METRICS", str(target))
    fit(target, every=3, monkeypatch=monkeypatch)
    lines = parse(target.read_text())
    assert lines[0] == {"kind": "begin", "time": 5.0, "epochs": 3, "steps": 6}
    assert [line["epoch"] for line in epochs(lines)] == [1, 2, 3]
    assert set(epochs(lines)[0]["metrics"]) >= {"loss", "mae", "val_loss", "val_mae"}
    batches = [line for line in lines if line["kind"] == "batch"]
    assert [(line["epoch"], line["batch"], line["step"]) for line in batches] == [
        (1, 3, 3),
        (1, 6, 6),
        (2, 3, 9),
        (2, 6, 12),
        (3, 3, 15),
        (3, 6, 18),
    ]


@pytest.mark.tensorflow
def test_outside_a_run_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNNER_METRICS", raising=False)
    monkeypatch.delenv("RUNNER_OUTPUTS", raising=False)
    monkeypatch.chdir(tmp_path)
    fit(None, every=None, monkeypatch=monkeypatch)
    assert list(tmp_path.iterdir()) == []
