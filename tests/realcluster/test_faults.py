"""Faults between runner and the real API server, injected by a proxy in front of it
(tests/support/faultproxy.py): 500 and 429 answers, slow answers, cut log streams and dropped watches.
runner survives each with nothing lost or duplicated: one Job and one ConfigMap per run however its
creates were retried, every log line once and in order. The assertions read the cluster directly (the
admin's client, not through the proxy); the proxy's rules are checked to have been used, so a test
cannot pass with its faults missing their requests, and a GET whose answer is cut mid-body is read again."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import run_runner, status_of
from tests.realcluster.helpers import ON_GPU_NODES, Job, LogFollower, small_job, submit_detached, wait_for_run
from tests.support.faultproxy import FaultProxy, Rule
from tests.support.realcluster import ControlPlane, RealKube

pytestmark = ON_GPU_NODES

NS = r"/namespaces/[^/]+"
JOBS = rf"^/apis/batch/v1{NS}/jobs"
CONFIGMAPS = rf"^/api/v1{NS}/configmaps"
PODS = rf"^/api/v1{NS}/pods"
LIST = r"(\?(?!.*(?i:watch=true))|$)"  # a GET of the collection that is not a watch
FOLLOW = rf"{PODS}/[^/]+/log\?.*(?i:follow=true)"
WATCH = rf"{PODS}\?.*(?i:watch=true)"


@pytest.fixture
def proxy(
    real_kube: RealKube, control_plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FaultProxy]:
    """The fault proxy in front of the API server; the runner under test talks to it (KUBECONFIG)."""
    with FaultProxy(real_kube.kubeconfig, control_plane.pki, tmp_path / "faultproxy") as proxy:
        monkeypatch.setenv("KUBECONFIG", str(proxy.kubeconfig))
        yield proxy


def statuses(proxy: FaultProxy, method: str, pattern: str) -> list[int]:
    """The statuses the proxy sent for the requests that matched, in order."""
    return [status for sent, path, status in proxy.requests if sent == method and re.search(pattern, path)]


def names(kube: RealKube, call: Callable[..., object], selector: str) -> list[str]:
    listing = kube.get(call, kube.namespace, label_selector=selector) or {}
    return sorted(item["metadata"]["name"] for item in listing.get("items") or [])


def test_submit_survives_500s_and_429s_on_create_and_makes_each_object_once(
    job: Job, python_base_image: str, real_kube: RealKube, proxy: FaultProxy
) -> None:
    path = small_job(job, python_base_image, "created-once", "echo created once")
    # The ConfigMap's create reaches the API server but its answer is lost, twice: the retries answer
    # 409, which runner reads as its own object. The Job's is throttled twice, then lost once.
    config_lost = proxy.add(Rule("POST", rf"{CONFIGMAPS}$", times=2, status=500, forward=True))
    throttled = proxy.add(Rule("POST", rf"{JOBS}$", times=2, status=429, retry_after=1))
    job_lost = proxy.add(Rule("POST", rf"{JOBS}$", times=1, status=500, forward=True))

    run = submit_detached(path)

    assert (config_lost.used, throttled.used, job_lost.used) == (2, 2, 1)
    assert statuses(proxy, "POST", CONFIGMAPS) == [500, 500, 409]
    assert statuses(proxy, "POST", JOBS) == [429, 429, 500, 409]
    assert names(real_kube, real_kube.batch.list_namespaced_job, "") == [run]
    assert names(real_kube, real_kube.core.list_namespaced_config_map, f"runner.dev/run={run}") == [run]
    done = wait_for_run(run, "succeeded")
    assert done["attempts"] == 1
    assert len(real_kube.pods_of(run)) == 1
    listed = run_runner("list", "-o", "name")
    assert listed.stdout.split() == [run], listed.output


def test_status_and_list_survive_error_bursts_and_slow_answers(
    job: Job, python_base_image: str, real_kube: RealKube, proxy: FaultProxy, tmp_path: Path
) -> None:
    steady = submit_detached(small_job(job, python_base_image, "steady", "echo started; sleep 300"))
    brief = submit_detached(small_job(job, python_base_image, "brief", "echo done"))
    wait_for_run(steady, "running")
    wait_for_run(brief, "succeeded")

    # status of a live run reads its Job (500, 500, 500, 429, then slow); a run known running whose Job
    # counts its pod ready reads no pods
    read_job = rf"{JOBS}/{steady}(\?|$)"
    rules = [
        proxy.add(Rule("GET", read_job, times=3, status=500)),
        proxy.add(Rule("GET", read_job, times=1, status=429, retry_after=1)),
        proxy.add(Rule("GET", read_job, times=1, delay=3)),
    ]
    started = time.monotonic()
    shown = status_of(steady)
    assert (shown["state"], shown["attempts"]) == ("running", 1), shown
    assert [rule.used for rule in rules] == [rule.times for rule in rules]
    assert time.monotonic() - started < 60

    # list --cluster from another machine's home adopts both runs, once each, through a burst on the LIST
    # of Jobs and on that of the pods (which tell that the live one runs: 503, then slow)
    burst = [
        proxy.add(Rule("GET", JOBS + LIST, times=2, status=500)),
        proxy.add(Rule("GET", JOBS + LIST, times=2, status=429, retry_after=1)),
        proxy.add(Rule("GET", JOBS + LIST, times=1, delay=3)),
        proxy.add(Rule("GET", PODS + LIST, times=1, status=503)),
        proxy.add(Rule("GET", PODS + LIST, times=1, delay=3)),
    ]
    elsewhere = {"RUNNER_HOME": str(tmp_path / "elsewhere")}
    listed = run_runner("list", "--cluster", "-o", "json", env=elsewhere)
    assert listed.code == 0, listed.output
    assert [rule.used for rule in burst] == [2, 2, 1, 1, 1]
    found = {doc["id"]: doc["state"] for doc in json.loads(listed.stdout)}
    assert found == {steady: "running", brief: "succeeded"}
    proxy.add(Rule("GET", JOBS + LIST, times=1, status=500))
    again = run_runner("list", "--cluster", "-o", "name", env=elsewhere)
    assert again.code == 0, again.output
    assert sorted(again.stdout.split()) == sorted([steady, brief])  # nothing adopted twice


def test_logs_follow_cut_several_times_gives_every_line_once_in_order(
    job: Job, python_base_image: str, real_kube: RealKube, proxy: FaultProxy
) -> None:
    script = "for i in $(seq 1 48); do echo line-$i; sleep 0.25; done"
    run = submit_detached(small_job(job, python_base_image, "counting", script))
    # the first follow cut mid-line, the next three after 1.5 s each, the next answered slowly
    mid_line = proxy.add(Rule("GET", FOLLOW, times=1, cut_bytes=20))
    timed = proxy.add(Rule("GET", FOLLOW, times=3, cut_seconds=1.5))
    slow = proxy.add(Rule("GET", FOLLOW, times=1, delay=1))

    with LogFollower(run) as follower:
        lines = follower.finish(timeout=180)

    numbered = [line for line in lines if line.startswith("line-")]
    assert numbered == [f"line-{i}" for i in range(1, 49)], follower.output()
    assert (mid_line.cuts, timed.cuts, slow.used) == (1, 3, 1), proxy.requests  # all while the job ran
    assert wait_for_run(run, "succeeded")["attempts"] == 1


def test_a_dropped_watch_between_attempts_is_relisted_and_attempt_2s_log_arrives(
    job: Job, python_base_image: str, real_kube: RealKube, proxy: FaultProxy
) -> None:
    script = 'echo attempt-$RUNNER_ATTEMPT; [ "$RUNNER_ATTEMPT" != 1 ] || exit 3; echo second-ok'
    run = submit_detached(small_job(job, python_base_image, "flaky", script, retries=1))

    with LogFollower(run) as follower:
        follower.wait_for_line("attempt-1", 120)
        # while the Job controller backs off before attempt 2, the follower waits on a watch of the
        # run's pods: its first watch is answered "version too old" (410), the next three are dropped
        expired = proxy.add(Rule("GET", WATCH, times=1, status=410, expire=True))
        dropped = proxy.add(Rule("GET", WATCH, times=3, cut_seconds=1))
        lines = follower.finish(timeout=180)

    assert [line for line in lines if line.startswith(("attempt-", "second-"))] == [
        "attempt-1",
        "attempt-2",
        "second-ok",
    ], follower.output()
    assert expired.used == 1
    assert dropped.cuts >= 1, proxy.requests  # a watch that an event ends first is not cut
    done = wait_for_run(run, "succeeded")
    assert done["attempts"] == 2
    assert len(real_kube.pods_of(run)) == 2


def test_a_list_whose_answer_is_cut_mid_body_is_read_again(
    job: Job, python_base_image: str, real_kube: RealKube, proxy: FaultProxy, tmp_path: Path
) -> None:
    run = submit_detached(small_job(job, python_base_image, "cut-short", "echo done"))
    cut = proxy.add(Rule("GET", JOBS + LIST, times=1, cut_bytes=50))
    listed = run_runner("list", "--cluster", "-o", "name", env={"RUNNER_HOME": str(tmp_path / "elsewhere")})
    assert cut.cuts == 1
    assert (listed.code, listed.stdout.split()) == (0, [run]), listed.output
