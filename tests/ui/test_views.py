"""The dashboard's data, made from records and telemetry lines (pure)."""

from __future__ import annotations

from runner.metrics.lines import batch_line, begin_line, epoch_line
from runner.store.collect import FileEntry
from runner.ui.access import is_loopback, token_given, token_matches
from runner.ui.views import artifact_rows, system_view, thin, training_view


def test_training_curves_group_by_epoch_and_by_step() -> None:
    lines = [
        begin_line(0.0, epochs=2, steps=4),
        batch_line(1.0, epoch=1, batch=2, step=2, logs={"loss": 0.9}),
        epoch_line(2.0, 1, {"loss": 0.8, "val_loss": 0.85}),
        epoch_line(3.0, 2, {"loss": 0.5}),
    ]
    view = training_view(lines)
    assert view["epochs"] == [1, 2]
    assert view["metrics"] == {"loss": [0.8, 0.5], "val_loss": [0.85, None]}
    assert (view["steps"], view["batchMetrics"]) == ([2], {"loss": [0.9]})
    assert view["planned"] == 2 and view["latest"] == {"loss": 0.5, "val_loss": 0.85}


def test_system_charts_have_a_series_per_gpu_and_memory_in_mib() -> None:
    gpu = {"index": 0, "name": "NVIDIA H200", "utilization": 97.0, "memoryUsed": 80123.0}
    view = system_view(
        [
            {"time": 0.0, "cpu": None, "memory": 2**30, "processes": 2},
            {"time": 5.0, "cpu": 180.0, "memory": 2**31, "processes": 2, "gpus": [gpu]},
        ]
    )
    assert view["times"] == ["1970-01-01T00:00:00Z", "1970-01-01T00:00:05Z"]
    assert (view["cpu"], view["memory"]) == ([None, 180.0], [1024.0, 2048.0])
    assert view["gpus"] == {"gpu0 NVIDIA H200": {"utilization": [None, 97.0], "memory": [None, 80123.0]}}


def test_long_runs_are_thinned_evenly_keeping_the_newest() -> None:
    lines = [{"time": float(second)} for second in range(10_001)]
    kept = thin(lines, limit=1000)
    assert len(kept) <= 1001 and kept[0]["time"] == 0.0 and kept[-1]["time"] == 10_000.0
    assert thin(lines[:10], limit=1000) == lines[:10]


def test_download_links_quote_what_the_job_named() -> None:
    (row,) = artifact_rows("demo-abc123", [FileEntry("outputs/a b?#.txt", 2048, "0" * 64)])
    assert row["url"] == "/runs/demo-abc123/files/outputs/a%20b%3F%23.txt"
    assert row["sizeText"] == "2.0 KiB"


def test_loopback_and_tokens() -> None:
    assert all(is_loopback(host) for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"))
    assert not any(is_loopback(host) for host in ("0.0.0.0", "192.168.1.5", "example.com"))
    assert token_given({}, {}, {"authorization": "Bearer abc"}) == "abc"
    assert token_given({"token": "q"}, {"runner_ui_token": "c"}, {}) == "q"
    assert token_matches("abc", "abc") and not token_matches("abc", None) and not token_matches("abc", "abd")
