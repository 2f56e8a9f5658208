"""runner.workers: what each worker of a multi-worker run is told, and how the agent reads its place."""

from __future__ import annotations

import json

import pytest

from runner.workers import (
    WorkerPlace,
    WorkerSettingError,
    place_from_env,
    worker_addresses,
    worker_area,
    worker_environment,
)

ADDRESSES = "train-0.train:2222,train-1.train:2222,train-2.train:2222"


def test_tf_config_names_every_worker_and_this_one() -> None:
    place = WorkerPlace(index=1, addresses=worker_addresses(["a", "b"]))
    env = worker_environment(place)
    assert json.loads(env["TF_CONFIG"]) == {
        "cluster": {"worker": ["a:2222", "b:2222"]},
        "task": {"type": "worker", "index": 1},
    }
    assert (env["RUNNER_WORKER_INDEX"], env["RUNNER_WORKERS"]) == ("1", "2")


def test_other_frameworks_get_torch_distributed_names_with_worker_0_as_master() -> None:
    env = worker_environment(WorkerPlace(index=2, addresses=tuple(ADDRESSES.split(",")), master_port=29511))
    assert {key: env[key] for key in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK")} == {
        "MASTER_ADDR": "train-0.train",
        "MASTER_PORT": "29511",
        "WORLD_SIZE": "3",
        "RANK": "2",
    }


def test_workers_reach_each_other_around_any_proxy() -> None:
    env = worker_environment(WorkerPlace(index=0, addresses=("127.0.0.1:4001", "127.0.0.1:4002")))
    assert env["no_grpc_proxy"] == "127.0.0.1"


def test_an_indexed_job_pod_finds_its_place_from_the_completion_index() -> None:
    place = place_from_env({"RUNNER_WORKER_ADDRESSES": ADDRESSES, "JOB_COMPLETION_INDEX": "2"})
    assert place == WorkerPlace(index=2, addresses=tuple(ADDRESSES.split(",")))
    assert not place.chief and place.count == 3


def test_the_runner_index_wins_over_the_completion_index() -> None:
    env = {"RUNNER_WORKER_ADDRESSES": ADDRESSES, "RUNNER_WORKER_INDEX": "0", "JOB_COMPLETION_INDEX": "2"}
    place = place_from_env(env)
    assert place is not None and place.chief


def test_a_single_worker_run_has_no_place() -> None:
    assert place_from_env({"JOB_COMPLETION_INDEX": "0"}) is None


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"RUNNER_WORKER_ADDRESSES": "a:2222,b"}, "'b' is not host:port"),
        ({"RUNNER_WORKER_ADDRESSES": "a:99999"}, "'a:99999' is not host:port"),
        ({"RUNNER_WORKER_ADDRESSES": "a:1,b:1"}, "neither RUNNER_WORKER_INDEX nor JOB_COMPLETION_INDEX"),
        ({"RUNNER_WORKER_ADDRESSES": "a:1,b:1", "RUNNER_WORKER_INDEX": "2"}, "use 0 to 1"),
        ({"RUNNER_WORKER_ADDRESSES": "a:1,b:1", "JOB_COMPLETION_INDEX": "-1"}, "JOB_COMPLETION_INDEX='-1'"),
        ({"RUNNER_WORKER_ADDRESSES": ",".join(["a:1"] * 33), "RUNNER_WORKER_INDEX": "0"}, "at most 32"),
    ],
)
def test_malformed_settings_say_what_is_wrong(env: dict[str, str], said: str) -> None:
    with pytest.raises(WorkerSettingError, match=None) as raised:
        place_from_env(env)
    assert said in str(raised.value)


def test_the_other_workers_keep_their_files_under_their_index() -> None:
    assert worker_area(3) == "workers/3"
