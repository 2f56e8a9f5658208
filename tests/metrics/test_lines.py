"""training.jsonl and system.jsonl lines: made from Keras-like logs, read back while they grow."""

from __future__ import annotations

import json
import math

from runner.metrics import training_file
from runner.metrics.lines import (
    batch_line,
    begin_line,
    dumps,
    epoch_line,
    epochs,
    latest,
    metric_names,
    parse,
    planned_epochs,
)


class Scalar:
    """Stands for a numpy scalar or a tensor: has __float__, is not a float."""

    def __init__(self, value: float) -> None:
        self.value = value

    def __float__(self) -> float:
        return self.value


def test_an_epoch_line_holds_plain_numbers_and_null_for_nan() -> None:
    line = epoch_line(10.0, 3, {"loss": Scalar(0.25), "accuracy": 0.9, "lr": object(), "val_loss": math.nan})
    assert line == {
        "kind": "epoch",
        "time": 10.0,
        "epoch": 3,
        "metrics": {"loss": 0.25, "accuracy": 0.9, "val_loss": None},
    }
    assert json.loads(dumps(line)) == line  # strict JSON: no NaN in the file


def test_a_file_being_written_is_read_up_to_its_last_complete_line() -> None:
    text = (
        dumps(begin_line(1.0, epochs=5, steps=100))
        + dumps(epoch_line(2.0, 1, {"loss": 1.0}))
        + '{"kind": "ep'
    )
    assert [line["kind"] for line in parse(text)] == ["begin", "epoch"]
    assert parse("not json\n[1, 2]\n" + dumps(epoch_line(2.0, 1, {}))) == [epoch_line(2.0, 1, {})]


def test_epochs_are_one_per_epoch_in_order_the_later_line_winning() -> None:
    lines = [
        begin_line(0.0, epochs=3, steps=None),
        epoch_line(1.0, 1, {"loss": 0.9}),
        batch_line(1.5, epoch=2, batch=10, step=20, logs={"loss": 0.7}),
        epoch_line(2.0, 2, {"loss": 0.6}),
        epoch_line(3.0, 1, {"loss": 0.8}),  # a retried attempt's first epoch
    ]
    assert [(line["epoch"], line["metrics"]["loss"]) for line in epochs(lines)] == [(1, 0.8), (2, 0.6)]
    assert latest(lines) == {"loss": 0.8}
    assert planned_epochs(lines) == 3
    assert metric_names([epoch_line(1.0, 1, {"loss": 1, "acc": 2}), epoch_line(1.0, 2, {"val_loss": 3})]) == [
        "loss",
        "acc",
        "val_loss",
    ]


def test_the_metrics_file_is_runner_metrics_else_under_the_outputs_else_none(tmp_path: object) -> None:
    assert str(training_file({"RUNNER_METRICS": "/m/t.jsonl", "RUNNER_OUTPUTS": "/o"})) == "/m/t.jsonl"
    assert str(training_file({"RUNNER_OUTPUTS": "/o"})) == "/o/telemetry/training.jsonl"
    assert training_file({}) is None
