"""The kubernetes backend's bulk paths, against the fake API server with its simulated cluster: many
runs refreshed together read exactly as each refreshed alone, in a few paginated LISTs (the server's
recorded requests show it), and adoption pages through the namespace's Jobs. Also the end time of a
failed run, which Kubernetes gives only on the Failed condition."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

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
        changed = ("state", "message", "attempts", "seen")
        records.update(run, **{name: getattr(record, name) for name in changed})
    since = len(cluster.server.requests)
    fresh = KubernetesBackend().refresh_many([records.get(run) for run in ids], records, settings)

    assert {run: (record.state, record.message) for run, record in fresh.items()} == expected
    assert {run: (r.state, r.message) for run in ids for r in [records.get(run)]} == expected
    jobs, pods = lists(cluster, since, "jobs"), lists(cluster, since, "pods")
    # 7 runs > 5, none read before: every runner Job, whole, 4 a page (no metadata-only list first)
    assert [(metadata, q.get("limit")) for metadata, q in job_lists(cluster, since)] == [(False, "4")] * 2
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
    # a fresh home (it records no run of the namespace): every runner Job is new there, so they are
    # listed whole, page by page, once; no metadata-only list first
    listed = job_lists(cluster, since)
    assert [(metadata, query.get("limit")) for metadata, query in listed] == [(False, "2")] * 3
    assert all(q["labelSelector"] == "app.kubernetes.io/managed-by=runner" for _, q in listed)
    record: RunRecord = elsewhere.get(ids[0])
    assert (record.state, record.launch["image"], record.max_attempts) == (RunState.PENDING, IMAGE, 1)
    assert record.labels["runner.dev/run"] == ids[0] and record.created > 0
    assert record.seen == {
        "version": cluster.server.get("jobs", ids[0])["metadata"]["resourceVersion"],
        "pods": True,
    }
    since = len(cluster.server.requests)
    # nothing new to adopt; the known runs are brought up to date on the way: waiting, their state is in
    # their pods, so their Jobs are read again, whole, as a refresh reads them
    assert sorted(KubernetesBackend().adopt(elsewhere, "runner-test", settings)) == sorted(ids)
    assert [metadata for metadata, _ in job_lists(cluster, since)] == [True] * 3 + [False] * 3


def test_a_home_that_records_a_run_of_the_namespace_lists_metadata_first_and_names_the_new_jobs(
    cluster: Cluster,  # noqa: F811
    tmp_path: Path,
    records: RunRecords,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kube_client, "PAGE_SIZE", 2)
    ids = launch(tmp_path, records, settings, 4)
    elsewhere = RunRecords(tmp_path / "elsewhere.db")
    elsewhere.create(replace(records.get(ids[0]), state=RunState.SUCCEEDED))  # finished, known there
    since = len(cluster.server.requests)
    assert sorted(KubernetesBackend().adopt(elsewhere, "runner-test", settings)) == sorted(ids[1:])
    # the metadata of the namespace's runner Jobs (without the objects), page by page; then the whole
    # Jobs of the three runs not recorded there, named in one selector (paged too)
    listed = job_lists(cluster, since)
    assert [(metadata, query.get("limit")) for metadata, query in listed] == [(True, "2")] * 2 + [
        (False, "2")
    ] * 2
    new = ",".join(sorted(ids[1:]))
    assert all(
        q["labelSelector"] == f"app.kubernetes.io/managed-by=runner,runner.dev/run in ({new})"
        for _, q in listed[2:]
    )
    assert elsewhere.get(ids[0]).state is RunState.SUCCEEDED, "a known run is not adopted again"

    other = RunRecords(tmp_path / "other.db")  # records a run of the namespace in another context only
    other.create(replace(records.get(ids[0]), launch={**records.get(ids[0]).launch, "context": "prod"}))
    since = len(cluster.server.requests)
    assert sorted(KubernetesBackend().adopt(other, "runner-test", settings)) == sorted(ids[1:])
    assert [metadata for metadata, _ in job_lists(cluster, since)] == [False] * 2, "fresh in this context"


def job_lists(cluster: Cluster, since: int) -> list[tuple[bool, dict[str, str]]]:  # noqa: F811
    """The LISTs of Jobs since then: whether each asked for metadata only, and its query."""
    return [
        ("as=PartialObjectMetadataList" in r.headers.get("Accept", r.headers.get("accept", "")), r.query)
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
    assert [metadata for metadata, _ in job_lists(cluster, since)] == [False], (
        "a fresh home: whole Jobs at once, no metadata list first"
    )
    assert len(lists(cluster, since, "pods")) == 1, "the pods of the Jobs that do not say it all, once"


JOBS = "/apis/batch/v1/namespaces/runner-test/jobs"


def whole_jobs_read(cluster: Cluster, since: int) -> list[str]:  # noqa: F811
    """The requests since then that read whole Jobs (a LIST that is not metadata-only, or a GET)."""
    return [
        f"{r.path}?{r.query.get('labelSelector', '')}"
        for r in cluster.server.requests[since:]
        if r.method == "GET"
        and "/jobs" in r.path
        and "as=PartialObjectMetadataList" not in r.headers.get("Accept", r.headers.get("accept", ""))
    ]


def suspend(cluster: Cluster, run_id: str) -> None:  # noqa: F811
    job = cluster.server.get("jobs", run_id)
    job["spec"]["suspend"] = True
    cluster.server.update(job)
    cluster.sim.settle()


def test_listing_the_cluster_again_reads_whole_only_the_jobs_that_changed_or_are_new(
    cluster: Cluster,  # noqa: F811
    tmp_path: Path,
    records: RunRecords,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster.server.store.managed_fields = True  # as a real API server writes them: cut before parsing
    cluster.sim.add_nodes(1, gpus=8)
    ids = launch(tmp_path, records, settings, 3)
    cluster.sim.settle()
    monkeypatch.setenv("RUNNER_HOME", str(tmp_path / "elsewhere"))  # another machine: it knows no run
    service = RunService(load_settings())

    def listed() -> dict[str, tuple[RunState, str]]:
        return {
            run.id: (run.state, run.message)
            for run in service.list_runs(cluster=True, cluster_namespace="runner-test")
        }

    first = listed()
    assert {state for state, _ in first.values()} == {RunState.RUNNING} and sorted(first) == sorted(ids)
    # adopted from a pending record, their running state came from their pods: read once more, whole,
    # and found running with every pod ready, which the Job alone says from then on
    assert listed() == first
    assert all(service.records.get(run).seen["pods"] is False for run in ids)  # type: ignore[index]

    since = len(cluster.server.requests)
    assert listed() == first
    assert [metadata for metadata, _ in job_lists(cluster, since)] == [True], "one metadata-only LIST"
    assert whole_jobs_read(cluster, since) == [] and lists(cluster, since, "pods") == []
    assert len(cluster.server.requests) - since == 1

    suspend(cluster, ids[0])  # its resourceVersion moves
    [new] = launch(tmp_path, records, settings, 1)
    cluster.sim.settle()
    since = len(cluster.server.requests)
    fourth = listed()
    assert fourth[ids[0]] == (RunState.PENDING, "suspended (kubectl patch or a queue holds it)")
    assert fourth[new][0] is RunState.RUNNING and sorted(fourth) == sorted([*ids, new])
    assert {run: fourth[run] for run in ids[1:]} == {run: first[run] for run in ids[1:]}
    read = whole_jobs_read(cluster, since)
    assert sorted(read) == sorted(
        [
            f"{JOBS}?app.kubernetes.io/managed-by=runner,runner.dev/run in ({new})",
            f"{JOBS}?runner.dev/run in ({ids[0]})",
        ]
    ), "whole: the new run's Job and the changed one's, nothing else"


def test_a_bulk_refresh_of_many_runs_reads_whole_only_the_jobs_that_changed(
    cluster: Cluster,  # noqa: F811
    tmp_path: Path,
    records: RunRecords,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster.server.store.managed_fields = True
    monkeypatch.setattr(kube_client, "SELECT_AT_MOST", 2)
    cluster.sim.add_nodes(1, gpus=8)
    ids = launch(tmp_path, records, settings, 4)
    cluster.sim.settle()
    backend = KubernetesBackend()

    def refreshed() -> dict[str, tuple[RunState, str]]:
        fresh = backend.refresh_many([records.get(run) for run in ids], records, settings)
        return {run: (record.state, record.message) for run, record in fresh.items()}

    since = len(cluster.server.requests)
    first = refreshed()  # never read: every whole Job (all the runner's, 4 > 2), and their pods
    assert {state for state, _ in first.values()} == {RunState.RUNNING}
    assert [metadata for metadata, _ in job_lists(cluster, since)] == [False], "no metadata list first"
    assert refreshed() == first  # known running now, every pod ready: the Jobs say all there is
    since = len(cluster.server.requests)
    assert refreshed() == first
    assert [metadata for metadata, _ in job_lists(cluster, since)] == [True]
    assert whole_jobs_read(cluster, since) == [] and len(cluster.server.requests) - since == 1

    suspend(cluster, ids[1])
    cluster.server.delete("jobs", ids[2], propagation="Background")
    since = len(cluster.server.requests)
    fresh = refreshed()
    assert fresh[ids[1]] == (RunState.PENDING, "suspended (kubectl patch or a queue holds it)")
    assert fresh[ids[2]][0] is RunState.CANCELLED and "deleted outside the runner" in fresh[ids[2]][1]
    assert {run: fresh[run] for run in (ids[0], ids[3])} == {run: first[run] for run in (ids[0], ids[3])}
    assert whole_jobs_read(cluster, since) == [f"{JOBS}?runner.dev/run in ({ids[1]})"], (
        "only the changed Job is read whole; the deleted one is gone from the metadata list"
    )


def test_many_changed_jobs_are_read_in_a_few_selectors_not_the_whole_namespace(
    cluster: Cluster,  # noqa: F811
    tmp_path: Path,
    records: RunRecords,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kube_client, "SELECT_AT_MOST", 2)
    monkeypatch.setattr(kube_client, "SELECTS_AT_MOST", 2)
    cluster.sim.add_nodes(1, gpus=8)
    ids = launch(tmp_path, records, settings, 6)
    cluster.sim.settle()
    backend = KubernetesBackend()
    for _ in range(2):  # read whole, then known running with every pod ready
        backend.refresh_many([records.get(run) for run in ids], records, settings)

    for run in ids[:3]:
        suspend(cluster, run)
    since = len(cluster.server.requests)
    fresh = backend.refresh_many([records.get(run) for run in ids], records, settings)
    assert {run for run, record in fresh.items() if record.state is RunState.PENDING} == set(ids[:3])
    changed = sorted(ids[:3])
    assert whole_jobs_read(cluster, since) == [
        f"{JOBS}?runner.dev/run in ({','.join(changed[:2])})",
        f"{JOBS}?runner.dev/run in ({changed[2]})",
    ], "3 changed Jobs, 2 a selector: not every runner Job"

    for run in ids[3:]:
        suspend(cluster, run)
    monkeypatch.setattr(kube_client, "SELECTS_AT_MOST", 1)
    since = len(cluster.server.requests)
    fresh = backend.refresh_many([records.get(run) for run in ids], records, settings)
    assert {record.state for record in fresh.values()} == {RunState.PENDING}
    assert whole_jobs_read(cluster, since) == [f"{JOBS}?app.kubernetes.io/managed-by=runner"], (
        "more changed than the selectors name: every runner Job, whole"
    )


def test_adoption_reads_no_record_nor_whole_job_of_many_known_unchanged_runs_only_the_changed_ones(
    cluster: Cluster,  # noqa: F811
    tmp_path: Path,
    records: RunRecords,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster.server.store.managed_fields = True
    cluster.sim.add_nodes(19, gpus=8)
    ids = launch(tmp_path, records, settings, 150)  # more than one selector names
    cluster.sim.settle()
    backend = KubernetesBackend()
    for _ in range(2):  # read whole, then known running with every pod ready
        assert sorted(backend.adopt(records, "runner-test", settings)) == sorted(ids)
    assert all(records.get(run).seen["pods"] is False for run in ids)  # type: ignore[index]
    parsed = spy_on_records(records, monkeypatch)

    since = len(cluster.server.requests)
    assert sorted(backend.adopt(records, "runner-test", settings)) == sorted(ids), "known and current"
    assert [metadata for metadata, _ in job_lists(cluster, since)] == [True]
    assert whole_jobs_read(cluster, since) == [] and len(cluster.server.requests) - since == 1
    assert parsed == {"read": [], "written": []}, "not one record read whole, nor written"

    suspend(cluster, ids[7])
    cluster.server.delete("jobs", ids[8], propagation="Background")
    cluster.sim.settle()
    since = len(cluster.server.requests)
    assert sorted(backend.adopt(records, "runner-test", settings)) == sorted(ids)
    assert whole_jobs_read(cluster, since) == [f"{JOBS}?runner.dev/run in ({ids[7]})"]
    assert set(parsed["read"]) == {ids[7], ids[8]} and sorted(parsed["written"]) == sorted(ids[7:9])
    assert records.get(ids[7]).message == "suspended (kubectl patch or a queue holds it)"
    assert records.get(ids[8]).state is RunState.CANCELLED
    assert {records.get(run).state for run in ids[:7] + ids[9:]} == {RunState.RUNNING}


def spy_on_records(records: RunRecords, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The ids of the records read whole (parsed from their rows) and written from now on, as they come."""
    import runner.records as records_module

    seen: dict[str, list[str]] = {"read": [], "written": []}
    parse, update = records_module._from_row, records.update

    def parsed(row: Any) -> RunRecord:
        seen["read"].append(row["id"])
        return parse(row)

    def updated(run_id: str, **changes: Any) -> RunRecord:
        seen["written"].append(run_id)
        return update(run_id, **changes)

    monkeypatch.setattr(records_module, "_from_row", parsed)
    monkeypatch.setattr(records, "update", updated)
    monkeypatch.setattr(records, "create", lambda record: seen["written"].append(record.id))
    return seen
