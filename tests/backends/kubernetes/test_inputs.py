"""A cluster run's inputs (runner.backends.kubernetes.inputs): local paths checked, uploaded into the s3://
store under their content address once, and named there; render names the same prefix uploading nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runner.backends.base import RunPlan
from runner.backends.kubernetes.inputs import check_inputs, planned_inputs, upload_inputs
from runner.errors import SubmitError, UserError
from runner.service.plan import plan_run
from runner.spec import load_manifest
from tests.conftest import write_job


def plan_with(tmp_path: Path, source: str) -> RunPlan:
    path = write_job(tmp_path / "job", inputs=[{"name": "cells", "source": "data", "path": "/data/cells"}])
    return plan_run(load_manifest(path), {"cells": source})


def cells(tmp_path: Path) -> Path:
    (tmp_path / "cells" / "sub").mkdir(parents=True)
    (tmp_path / "cells" / "a.txt").write_text("a")
    (tmp_path / "cells" / "sub" / "b.txt").write_text("bb")
    return tmp_path / "cells"


def test_a_missing_local_input_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SubmitError, match="does not exist"):
        check_inputs(plan_with(tmp_path, str(tmp_path / "nothing")))


def test_pvc_inputs_are_left_to_the_cluster(tmp_path: Path) -> None:
    plan = plan_with(tmp_path, "pvc://datasets/cells")
    check_inputs(plan)
    assert planned_inputs(plan, "s3://store/runs") == {"cells": "pvc://datasets/cells"}


@pytest.mark.usefixtures("aws_env")
def test_an_empty_s3_prefix_is_refused(tmp_path: Path, bucket: str) -> None:
    with pytest.raises(UserError, match="holds no objects"):
        check_inputs(plan_with(tmp_path, f"s3://{bucket}/none/"))


def test_a_local_input_is_uploaded_once_and_named_by_its_prefix(tmp_path: Path, s3: Any, bucket: str) -> None:
    plan = plan_with(tmp_path, str(cells(tmp_path)))
    check_inputs(plan)
    store = f"s3://{bucket}/runs"
    planned = planned_inputs(plan, store)["cells"]
    assert planned.startswith(f"{store}/inputs/sha256-")
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)  # naming it uploads nothing

    said: list[str] = []
    uploaded = upload_inputs(plan, store, said.append)
    assert uploaded.inputs == {"cells": planned}
    keys = sorted(item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"])
    prefix = planned.removeprefix(f"s3://{bucket}/")
    assert keys == [f"{prefix}/.runner-input.json", f"{prefix}/a.txt", f"{prefix}/sub/b.txt"]
    assert any(line.startswith("input 'cells': ") and "uploading 2 file(s)" in line for line in said)

    said.clear()
    assert upload_inputs(plan, store, said.append).inputs == {"cells": planned}
    assert len(said) == 1 and "already in the store" in said[0]
