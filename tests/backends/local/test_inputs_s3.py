"""s3:// and pvc:// inputs on this machine: checked before anything exists, s3:// prefixes fetched into a
cache under RUNNER_HOME (once while unchanged), pvc:// refused; end to end on the process backend."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runner.backends.base import RunPlan
from runner.backends.local.inputs import CACHE, check_inputs, fetch_inputs
from runner.errors import SubmitError, UserError
from runner.service.plan import plan_run
from runner.spec import load_manifest
from tests.conftest import Result, status_of, store_dir, submitted_run, write_job

Runner = Callable[..., Result]

READER = (
    "import json, os, pathlib; root = pathlib.Path(os.environ['RUNNER_INPUT_CELLS']); "
    "files = sorted(str(p.relative_to(root)) for p in root.rglob('*') if p.is_file()); "
    "print('read', files, sum(p.stat().st_size for p in root.rglob('*') if p.is_file())); "
    "pathlib.Path(os.environ['RUNNER_OUTPUTS'], 'seen.json').write_text(json.dumps(files))"
)


def put_cells(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="sets/cells/a.txt", Body=b"a" * 10)
    s3.put_object(Bucket=bucket, Key="sets/cells/sub/b.txt", Body=b"b" * 20)
    s3.put_object(Bucket=bucket, Key="sets/cells/sub/c.txt", Body=b"c" * 30)


def plan_with(tmp_path: Path, source: str) -> RunPlan:
    path = write_job(tmp_path / "job", inputs=[{"name": "cells", "source": "data", "path": "/data/cells"}])
    return plan_run(load_manifest(path), {"cells": source})


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_a_pvc_is_refused_on_this_machine(tmp_path: Path) -> None:
    with pytest.raises(SubmitError, match="only a cluster can mount") as raised:
        check_inputs(plan_with(tmp_path, "pvc://datasets/cells"), "process")
    assert raised.value.exit_code == 2 and "--backend kubernetes" in (raised.value.hint or "")


def test_a_missing_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SubmitError, match="does not exist"):
        check_inputs(plan_with(tmp_path, str(tmp_path / "nothing")), "docker")


def test_other_urls_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SubmitError, match="local paths and s3:// prefixes"):
        check_inputs(plan_with(tmp_path, "https://host/data.csv"), "process")


@pytest.mark.usefixtures("aws_env")
def test_an_empty_prefix_is_refused(tmp_path: Path, bucket: str) -> None:
    with pytest.raises(UserError, match="holds no objects") as raised:
        check_inputs(plan_with(tmp_path, f"s3://{bucket}/nothing/"), "process")
    assert raised.value.exit_code == 2


def test_an_unreachable_endpoint_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", closed_port())
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(UserError, match="cannot be listed") as raised:
        check_inputs(plan_with(tmp_path, "s3://bucket/cells/"), "process")
    assert raised.value.exit_code == 2


def test_a_prefix_is_fetched_once_while_it_is_unchanged(tmp_path: Path, s3: Any, bucket: str) -> None:
    put_cells(s3, bucket)
    plan = plan_with(tmp_path, f"s3://{bucket}/sets/cells/")
    check_inputs(plan, "process")
    said: list[str] = []
    fetched = fetch_inputs(plan, tmp_path / "home", said.append)
    directory = Path(fetched.inputs["cells"])
    assert directory.is_relative_to(tmp_path / "home" / CACHE)
    assert (directory / "sub" / "c.txt").read_bytes() == b"c" * 30
    assert any("3/3 file(s)" in line for line in said)

    said.clear()
    assert fetch_inputs(plan, tmp_path / "home", said.append).inputs == fetched.inputs
    assert said and "unchanged" in said[0]

    s3.put_object(Bucket=bucket, Key="sets/cells/a.txt", Body=b"A" * 11)  # changed: fetched again
    again = fetch_inputs(plan, tmp_path / "home", said.append)
    assert again.inputs["cells"] != fetched.inputs["cells"]
    assert (Path(again.inputs["cells"]) / "a.txt").read_bytes() == b"A" * 11


@pytest.mark.usefixtures("home", "aws_env")
def test_a_job_reads_its_s3_input_on_the_process_backend(
    runner: Runner, tmp_path: Path, home: Path, s3: Any, bucket: str
) -> None:
    put_cells(s3, bucket)
    manifest = write_job(
        tmp_path / "reader",
        "reader",
        command=["python", "-c", READER],
        inputs=[{"name": "cells", "source": f"s3://{bucket}/sets/cells/", "path": "/data/cells"}],
    )
    result: Result = runner("submit", "--backend", "process", str(manifest))
    assert result.code == 0, result.output
    assert "input 'cells': fetching 3 file(s)" in result.output
    assert "read ['a.txt', 'sub/b.txt', 'sub/c.txt'] 60" in result.stdout
    run = submitted_run(result)
    assert status_of(run)["state"] == "succeeded"
    seen = json.loads((store_dir(home, "reader", run) / "outputs" / "seen.json").read_text())
    assert seen == ["a.txt", "sub/b.txt", "sub/c.txt"]

    again = runner("submit", "--backend", "process", str(manifest))
    assert again.code == 0 and "unchanged, using the copy" in again.output, again.output


@pytest.mark.usefixtures("home", "aws_env")
@pytest.mark.parametrize(
    ("source", "said"),
    [
        ("s3://{bucket}/nothing/", "holds no objects"),
        ("pvc://datasets/cells", "only a cluster can mount"),
        ("{tmp}/missing", "does not exist"),
    ],
)
def test_bad_inputs_are_refused_before_any_run_exists(
    runner: Runner, tmp_path: Path, bucket: str, source: str, *, said: str
) -> None:
    manifest = write_job(tmp_path / "reader", "reader", command=["true"])
    source = source.format(bucket=bucket, tmp=tmp_path)
    text = manifest.read_text() + f"  inputs:\n  - {{name: cells, source: '{source}', path: /data/cells}}\n"
    manifest.write_text(text)
    result = runner("submit", "--backend", "process", str(manifest))
    assert result.code == 2, result.output
    assert said in result.stderr and "Traceback" not in result.output
    listed = runner("list", "-o", "json")
    assert json.loads(listed.stdout) == []
