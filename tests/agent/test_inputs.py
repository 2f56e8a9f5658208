"""The agent's inputs: RUNNER_INPUTS parsed (pure), s3:// prefixes fetched before the command starts."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from runner.agent.inputs import Fetch, InputsError, fetch_inputs, parse_inputs
from runner.agent.main import main


def test_unset_or_empty_means_nothing_to_fetch() -> None:
    assert parse_inputs(None) == [] and parse_inputs("") == [] and parse_inputs("  ") == []


def test_inputs_are_parsed_in_name_order() -> None:
    text = json.dumps(
        {"b": {"source": "s3://x/b/", "path": "/data/b"}, "a": {"source": "s3://x/a", "path": "/a"}}
    )
    assert parse_inputs(text) == [
        Fetch("a", "s3://x/a", Path("/a")),
        Fetch("b", "s3://x/b/", Path("/data/b")),
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{", "not JSON"),
        ("[]", "expected an object"),
        ('{"a": 1}', "expected {source, path}"),
        ('{"a": {"source": "gs://x/a", "path": "/a"}}', "fetches s3:// sources"),
        ('{"a": {"source": "s3://x/a", "path": "a"}}', "absolute path"),
    ],
)
def test_malformed_inputs_are_refused(text: str, problem: str) -> None:
    with pytest.raises(InputsError, match=problem):
        parse_inputs(text)


def put_cells(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="sets/cells/one.txt", Body=b"one\n")
    s3.put_object(Bucket=bucket, Key="sets/cells/deep/two.txt", Body=b"two\n")
    s3.put_object(Bucket=bucket, Key="sets/cellsother/no.txt", Body=b"not this\n")


def test_an_s3_prefix_is_fetched_into_the_inputs_path(s3: Any, bucket: str, tmp_path: Path) -> None:
    put_cells(s3, bucket)
    said: list[str] = []
    env = {
        "RUNNER_INPUTS": json.dumps(
            {"cells": {"source": f"s3://{bucket}/sets/cells/", "path": str(tmp_path / "in")}}
        )
    }
    assert fetch_inputs(env, said.append) is None
    assert (tmp_path / "in" / "one.txt").read_bytes() == b"one\n"
    assert (tmp_path / "in" / "deep" / "two.txt").read_bytes() == b"two\n"
    assert not (tmp_path / "in" / "no.txt").exists()
    assert any("2/2 file(s)" in line for line in said)


def test_an_empty_prefix_is_said_not_raised(s3: Any, bucket: str, tmp_path: Path) -> None:
    env = {"RUNNER_INPUTS": json.dumps({"cells": {"source": f"s3://{bucket}/none/", "path": str(tmp_path)}})}
    problem = fetch_inputs(env, lambda _: None)
    assert problem is not None and "holds no objects" in problem


def test_the_command_reads_its_fetched_input_and_a_failed_fetch_fails_the_attempt(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    put_cells(s3, bucket)
    store = f"s3://{bucket}/runs"
    base = {
        **os.environ,
        "RUNNER_STORE": store,
        "RUNNER_JOB": "demo",
        "RUNNER_RUN_ID": "demo-abc123",
        "RUNNER_ATTEMPT": "1",
        "RUNNER_OUTPUTS": str(tmp_path / "out"),
        "RUNNER_METRICS_INTERVAL": "0",
    }
    inputs = {"cells": {"source": f"s3://{bucket}/sets/cells", "path": str(tmp_path / "cells")}}
    command = [sys.executable, "-c", f"print(open({str(tmp_path / 'cells' / 'one.txt')!r}).read().strip())"]
    assert main(["--", *command], {**base, "RUNNER_INPUTS": json.dumps(inputs)}) == 0
    log = s3.get_object(Bucket=bucket, Key="runs/demo/demo-abc123/logs/attempt-1.log")["Body"].read()
    assert b"runner: input 'cells': 2/2 file(s)" in log and log.endswith(b"one\n")

    inputs["cells"]["source"] = f"s3://{bucket}/missing"
    env = {**base, "RUNNER_RUN_ID": "demo-abc124", "RUNNER_INPUTS": json.dumps(inputs)}
    assert main(["--", "true"], env) == 1
    run = json.loads(s3.get_object(Bucket=bucket, Key="runs/demo/demo-abc124/run.json")["Body"].read())
    assert run["state"] == "failed" and "holds no objects" in run["message"]


def test_the_command_never_sees_what_the_agent_fetches_for_it() -> None:
    from runner.agent.settings import child_environment, parse_settings

    env = {
        "RUNNER_INPUTS": '{"cells":{"path":"/data","source":"s3://b/cells/"}}',
        "RUNNER_STORE": "s3://b/runs",
        "RUNNER_JOB": "malaria",
        "RUNNER_RUN_ID": "malaria-abc123",
    }
    assert "RUNNER_INPUTS" not in child_environment(env, parse_settings(env))
