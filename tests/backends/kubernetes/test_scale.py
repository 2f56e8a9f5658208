"""The kubernetes backend's bulk paths, against the fake API server with its simulated cluster: many
runs refreshed together read exactly as each refreshed alone, in a few paginated LISTs (the server's
recorded requests show it), and adoption pages through the namespace's Jobs. Also the end time of a
failed run, which Kubernetes gives only on the Failed condition."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import runner.backends.kubernetes.client as kube_client
from runner.backends.base import RunPlan
from runner.backends.kubernetes.backend import KubernetesBackend
from runner.backends.kubernetes.pure.reading import finished_time, parse_time
from runner.config import Settings, load_settings
from runner.records import RunRecord, RunRecords, RunState
from runner.render import resolved_yaml
from runner.service.plan import new_run_id
from runner.service.runs import RunService
from runner.spec import load_manifest
from tests.support.sim.fixtures import Cluster, cluster  # noqa: F401  (fixture)

IMAGE = "127.0.0.1:5000/runner/scale:test"
JOB = """apiVersion: runner/v1
kind: Job
metadata: {name: scale}
spec:
  image: {base: python:3, context: .}
  command: [python, -c, "print('hi')"]
  resources: {gpu: GPUS}
  kubernetes: {namespace: runner-test}
"""


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("RUNNER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RUNNER_STORE", "s3://bench/runs")
    return load_settings()


@pytest.fixture
def records(settings: Settings) -> Iterator[RunRecords]:
    database = RunRecords(settings.database)
    yield database
    database.close()


def launch(tmp_path: Path, records: RunRecords, settings: Settings, count: int, gpus: int = 1) -> list[str]:
    path = tmp_path / f"job-{gpus}.yaml"
    path.write_text(JOB.replace("GPUS", str(gpus)))
    loaded = load_manifest(path)
    backend = KubernetesBackend()
    ids = []
    for _ in range(count):
        plan = RunPlan(
            new_run_id("scale"), loaded.manifest, resolved_yaml(loaded.manifest), tmp_path, image=IMAGE
        )
        ids.append(backend.launch(plan, records, settings).id)
    return ids


def one_by_one(records: RunRecords, settings: Settings, ids: list[str]) -> dict[str, tuple[RunState, str]]:
    backend = KubernetesBackend()
    return {
        run: (fresh.state, fresh.message)
        for run in ids
        for fresh in [backend.refresh(records.get(run), records, settings)]
    }


def lists(cluster: Cluster, since: int, plural: str) -> list[dict[str, str]]:  # noqa: F811
    return [
        r.query
        for r in cluster.server.requests[since:]
        if r.method == "GET" and r.path.endswith(f"/{plural}")
    ]


def test_bulk_refresh_reads_every_run_as_refresh_does_in_paginated_lists(
    cluster: Cluster,  # noqa: F811
    tmp_path: Path,
    records: RunRecords,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kube_client, "PAGE_SIZE", 4)
    monkeypatch.setattr(kube_client, "SELECT_AT_MOST", 5)
    cluster.sim.add_nodes(1, gpus=4)
    ids = launch(tmp_path, records, settings, 6) + launch(tmp_path, records, settings, 1, gpus=9)
    cluster.sim.settle()
    cluster.sim.advance(30)
    snapshot = {run: records.get(run) for run in ids}
    expected = one_by_one(records, settings, ids)
    assert sorted(state for state, _ in expected.values()) == [RunState.PENDING] * 3 + [RunState.RUNNING] * 4
    assert any(message.startswith("waiting: ") for _, message in expected.values())

    for run, record in snapshot.items():  # back as they were before the per-run refresh
        records.update(run, **{name: getattr(record, name) for name in ("state", "message", "attempts")})
    since = len(cluster.server.requests)
    fresh = KubernetesBackend().refresh_many([records.get(run) for run in ids], records, settings)

    assert {run: (record.state, record.message) for run, record in fresh.items()} == expected
    assert {run: (r.state, r.message) for run in ids for r in [records.get(run)]} == expected
    jobs, pods = lists(cluster, since, "jobs"), lists(cluster, since, "pods")
    assert [q.get("limit") for q in jobs] == ["4", "4"]  # 7 runs > 5: every runner Job, 4 a page
    assert "continue" in jobs[1] and jobs[0]["labelSelector"] == "app.kubernetes.io/managed-by=runner"
    assert len(pods) == 2 and len(cluster.server.requests) - since == 4  # no request per run


def test_a_few_live_runs_are_named_in_one_selector_and_finished_ones_cost_no_pod_list(
    cluster: Cluster,  # noqa: F811
    tmp_path: Path,
    records: RunRecords,
    settings: Settings,
) -> None:
    cluster.sim.add_nodes(1, gpus=8)
    ids = launch(tmp_path, records, settings, 3)
    cluster.sim.settle()
    since = len(cluster.server.requests)
    fresh = KubernetesBackend().refresh_many([records.get(run) for run in ids], records, settings)
    assert {record.state for record in fresh.values()} == {RunState.RUNNING}
    assert lists(cluster, since, "jobs")[0]["labelSelector"] == f"runner.dev/run in ({','.join(sorted(ids))})"
    assert len(cluster.server.requests) - since == 2

    since = len(cluster.server.requests)
    again = KubernetesBackend().refresh_many([records.get(run) for run in ids], records, settings)
    assert {run: (r.state, r.message) for run, r in again.items()} == {
        run: (r.state, r.message) for run, r in fresh.items()
    }
    assert lists(cluster, since, "pods") == [], "running, every pod ready: the Jobs say all there is"
    assert len(cluster.server.requests) - since == 1

    cluster.sim.advance(61)
    since = len(cluster.server.requests)
    done = KubernetesBackend().refresh_many([records.get(run) for run in ids], records, settings)
    assert {(r.state, r.message) for r in done.values()} == {(RunState.SUCCEEDED, "succeeded")}
    assert all(
        r.finished is not None and r.started is not None and r.finished > r.started for r in done.values()
    )
    assert lists(cluster, since, "pods") == []  # finished Jobs say everything: their pods are not listed


def test_a_failed_run_ends_at_its_failed_condition_and_deleted_jobs_are_noticed_in_bulk(
    cluster: Cluster,  # noqa: F811
    tmp_path: Path,
    records: RunRecords,
    settings: Settings,
) -> None:
    cluster.sim.add_nodes(1, gpus=8)
    cluster.runtime.exit_code = lambda pod: 3
    failed, deleted = launch(tmp_path, records, settings, 2)
    cluster.sim.settle()
    cluster.server.delete("jobs", deleted, propagation="Background")
    cluster.sim.advance(60)
    job = cluster.server.get("jobs", failed)
    condition = next(c for c in job["status"]["conditions"] if c["type"] == "Failed")
    assert "completionTime" not in job["status"]

    fresh = KubernetesBackend().refresh_many([records.get(failed), records.get(deleted)], records, settings)
    assert fresh[failed].state is RunState.FAILED
    assert fresh[failed].finished == parse_time(condition["lastTransitionTime"])
    assert fresh[deleted].state is RunState.CANCELLED
    assert "deleted outside the runner" in fresh[deleted].message
    again = KubernetesBackend().refresh(
        replace(records.get(failed), state=RunState.RUNNING), records, settings
    )
    assert again.finished == fresh[failed].finished  # the per-run path reads the same end


def test_finished_time_prefers_completion_and_falls_back_to_the_failed_condition() -> None:
    failed = {
        "conditions": [{"type": "Failed", "status": "True", "lastTransitionTime": "2025-06-02T00:01:00Z"}]
    }
    assert finished_time(failed) == parse_time("2025-06-02T00:01:00Z")
    assert finished_time({"completionTime": "2025-06-02T00:02:00Z", **failed}) == parse_time(
        "2025-06-02T00:02:00Z"
    )
    assert finished_time({"conditions": [{"type": "Failed", "status": "False"}]}) is None


def test_adoption_pages_through_the_namespaces_jobs_once(
    cluster: Cluster,  # noqa: F811
    tmp_path: Path,
    records: RunRecords,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kube_client, "PAGE_SIZE", 2)
    ids = launch(tmp_path, records, settings, 5)
    elsewhere = RunRecords(tmp_path / "elsewhere.db")
    since = len(cluster.server.requests)
    adopted = KubernetesBackend().adopt(elsewhere, "runner-test", settings)
    assert sorted(adopted) == sorted(ids)
    # the names of the namespace's runner Jobs (the server's table, without the objects), page by page;
    # then the whole Jobs of the five runs not recorded here, named in one selector (paged too)
    listed = job_lists(cluster, since)
    assert [(table, query.get("limit")) for table, query in listed] == [(True, "2")] * 3 + [(False, "2")] * 3
    assert all(query.get("includeObject") == "None" for _, query in listed[:3])
    assert all(f"runner.dev/run in ({','.join(sorted(ids))})" in q["labelSelector"] for _, q in listed[3:])
    record: RunRecord = elsewhere.get(ids[0])
    assert (record.state, record.launch["image"], record.max_attempts) == (RunState.PENDING, IMAGE, 1)
    assert record.labels["runner.dev/run"] == ids[0] and record.created > 0
    since = len(cluster.server.requests)
    assert KubernetesBackend().adopt(elsewhere, "runner-test", settings) == []  # known runs stay as they are
    assert [table for table, _ in job_lists(cluster, since)] == [True] * 3  # no whole Job read


def job_lists(cluster: Cluster, since: int) -> list[tuple[bool, dict[str, str]]]:  # noqa: F811
    """The LISTs of Jobs since then: whether each asked for the server's table, and its query."""
    return [
        ("as=Table" in r.headers.get("Accept", r.headers.get("accept", "")), r.query)
        for r in cluster.server.requests[since:]
        if r.method == "GET" and r.path.endswith("/jobs")
    ]


def test_finished_jobs_are_adopted_finished_so_listing_them_reads_no_pods(
    cluster: Cluster,  # noqa: F811
    tmp_path: Path,
    records: RunRecords,
    settings: Settings,
) -> None:
    cluster.sim.add_nodes(1, gpus=8)
    ids = launch(tmp_path, records, settings, 3)
    cluster.sim.advance(61)
    elsewhere = RunRecords(tmp_path / "elsewhere.db")
    since = len(cluster.server.requests)
    KubernetesBackend().adopt(elsewhere, "runner-test", settings)
    adopted = [elsewhere.get(run) for run in ids]
    assert {(r.state, r.message, r.attempts) for r in adopted} == {(RunState.SUCCEEDED, "succeeded", 1)}
    assert all(r.finished is not None and r.started is not None for r in adopted)
    assert KubernetesBackend().refresh_many(adopted, elsewhere, settings) == {}  # nothing left to read
    assert lists(cluster, since, "pods") == []


def test_running_jobs_are_adopted_running_from_one_pod_list_and_listing_reads_them_once(
    cluster: Cluster,  # noqa: F811
    tmp_path: Path,
    records: RunRecords,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster.sim.add_nodes(1, gpus=2)
    ids = launch(tmp_path, records, settings, 3)
    cluster.sim.settle()
    expected = one_by_one(records, settings, ids)
    assert sorted(state for state, _ in expected.values()) == [
        RunState.PENDING,
        RunState.RUNNING,
        RunState.RUNNING,
    ]

    monkeypatch.setenv("RUNNER_HOME", str(tmp_path / "elsewhere"))  # another machine: it knows no run
    since = len(cluster.server.requests)
    listed = RunService(load_settings()).list_runs(cluster=True, cluster_namespace="runner-test")
    assert {run.id: (run.state, run.message) for run in listed} == expected
    assert [table for table, _ in job_lists(cluster, since)] == [True, False], "names, then whole Jobs once"
    assert len(lists(cluster, since, "pods")) == 1, "the pods of the Jobs that do not say it all, once"
