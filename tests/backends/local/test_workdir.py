"""A local run's work directory: worker 0 keeps the single-worker layout, the others workers/<i>/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runner.backends.local.attempts import LocalLaunch
from runner.backends.local.workdir import WorkDir, worker_count


def test_worker_zero_is_the_run_directory_and_the_others_their_own_area(tmp_path: Path) -> None:
    root = WorkDir(tmp_path)
    assert root.worker(0).log(2) == tmp_path / "logs" / "attempt-2.log"
    assert root.worker(0).outputs == tmp_path / "outputs"
    assert root.worker(3).log(2) == tmp_path / "workers" / "3" / "logs" / "attempt-2.log"
    assert root.worker(3).outputs == tmp_path / "workers" / "3" / "outputs"
    assert root.worker(3).exit_file(1) == tmp_path / "workers" / "3" / "attempt-1.exit"


def test_a_record_made_before_workers_existed_loads_as_one_worker() -> None:
    old: dict[str, Any] = {"command": ["x"], "env": {}, "timeout": None, "gpus": 1, "gpu_type": None}
    assert LocalLaunch.from_data(old).workers == 1
    assert worker_count(old) == 1
    assert worker_count({**old, "workers": 4}) == 4
    assert LocalLaunch.from_data({**old, "workers": 4}).to_data()["workers"] == 4
