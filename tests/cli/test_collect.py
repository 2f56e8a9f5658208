"""`runner collect`: collecting a run again, through the real command (the failing stores are in
tests/backends/local/test_collection.py)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Result, store_dir, submitted_run

Runner = Callable[..., Result]


def test_collect_needs_a_run_and_names_unknown_ones(runner: Runner) -> None:
    assert runner("collect").code == 2
    missing = runner("collect", "no-such-run")
    assert missing.code == 1
    assert "no run or job named 'no-such-run'" in missing.stderr and "Traceback" not in missing.output
    assert "collect" in runner("--help").stdout


def test_collect_leaves_a_collected_run_as_it_is(
    runner: Runner, job: Callable[..., Path], home: Path
) -> None:
    run = submitted_run(runner("submit", str(job("once", command=["true"]))))
    manifest = (store_dir(home, "once", run) / "MANIFEST.json").read_bytes()
    again = runner("collect", run)
    assert again.code == 0, again.output
    assert f"run {run} succeeded; collected in file://" in again.stdout
    assert (store_dir(home, "once", run) / "MANIFEST.json").read_bytes() == manifest


def test_collect_takes_over_an_uncollected_run(runner: Runner, job: Callable[..., Path], home: Path) -> None:
    """An uncollected run (its store failed at the time): collected now, in the outcome it had."""
    path = job("later", command=["sh", "-c", 'echo kept > "$RUNNER_OUTPUTS/kept"; exit 5'])
    run = submitted_run(runner("submit", str(path)))
    store = store_dir(home, "later", run)
    for item in sorted(store.rglob("*"), reverse=True):  # as if the store had refused everything
        item.unlink() if item.is_file() else item.rmdir()
    outputs = home / "runs" / run / "outputs"
    outputs.mkdir()
    (outputs / "kept").write_text("kept\n")
    outcome = {"state": "failed", "exitCode": 5, "attempts": [], "message": "exited with code 5"}
    with sqlite3.connect(home / "runs.db") as db:
        db.execute(
            "UPDATE runs SET state = 'uncollected', outcome = ?, next_collect = 9e18 WHERE id = ?",
            (json.dumps(outcome), run),
        )
    shown = runner("status", run, "-o", "json")
    assert json.loads(shown.stdout)["state"] == "uncollected", "not retried before its time"
    done = runner("collect", run)
    assert done.code == 0, done.output
    assert f"run {run} failed" in done.stdout
    assert (store / "outputs" / "kept").read_text() == "kept\n"
    assert json.loads((store / "run.json").read_text())["exitCode"] == 5
    assert not outputs.exists()
