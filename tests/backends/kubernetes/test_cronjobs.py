"""Schedules on a cluster: CronJobs applied, listed, paused, triggered and deleted through the official
client against the fake API server, checked with the real kubectl; the runs they start are ordinary runs
for `runner list --cluster`, status, logs and cancel.

The fake server has no controllers. Where a CronJob would fire, `fire` creates the Job from its
jobTemplate exactly as the CronJob controller does (name `<cronjob>-<scheduled unix minutes>`, the
template's labels and annotations plus the scheduled-timestamp annotation, a controller reference to the
CronJob); `create_job_pod` then makes its pod as the job controller does (labelled with the Job's name).
Time is fixed: views are computed at NOW, never from the wall clock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from runner.backends.base import RunPlan
from runner.backends.kubernetes.cronjobs import CronJobs
from runner.backends.kubernetes.pure.cronjobs import (
    INSTANTIATE_ANNOTATION,
    cronjob_view,
    job_state,
    manual_job,
    next_cronjob_fire,
    unused_config_maps,
)
from runner.config import Settings
from runner.errors import BackendError, NotFoundError, UserError
from runner.records import RunState
from runner.render import resolved_yaml
from runner.render.rbac import SUBMITTER_RULES
from runner.spec import JobManifest
from tests.conftest import Result, status_of
from tests.support.fakes import FakeClock
from tests.support.sim.cronjobs import job_for_slot
from tests.support.sim.cronjobs import job_name as slot_job_name

Runner = Callable[..., Result]

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)  # a Monday, 21:00 in Seoul
IMAGE = "127.0.0.1:5000/runner/nightly:3f2a9c1d0e4b5a69"
SCHEDULE = {"cron": "0 2 * * *", "timeZone": "Asia/Seoul"}
COMPLETE = {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}


# ------------------------------------------------------------------------------------ helpers


def manifest_of(name: str = "nightly", **spec: Any) -> JobManifest:
    body = {"command": ["sh", "-c", "echo hi"], "schedule": SCHEDULE, **spec}
    return JobManifest.model_validate(
        {
            "apiVersion": "runner/v1",
            "kind": "Job",
            "metadata": {"name": name, "labels": {"team": "ml"}},
            "spec": body,
        }
    )


def plan_of(manifest: JobManifest, tmp_path: Path, image: str | None = IMAGE) -> RunPlan:
    """A plan as KubernetesBackend.prepare leaves it: the image built and pushed."""
    return RunPlan(
        run_id=f"{manifest.name}-unused",
        manifest=manifest,
        manifest_text=resolved_yaml(manifest),
        context_dir=tmp_path,
        image=image,
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path / "home",
        store_url="s3://runner-artifacts/runs",
        backoff_seconds=0.2,
        grace_seconds=1.0,
        backend="kubernetes",
        registry="127.0.0.1:5000",
    )


@pytest.fixture
def schedules(kube: Any) -> CronJobs:
    return CronJobs(clock=FakeClock(NOW))


def fire(kube: Any, name: str, scheduled: datetime) -> dict[str, Any]:
    """What the CronJob controller does when name's schedule comes due at `scheduled`."""
    cronjob = kube.server.get("cronjobs", name)
    stamp = scheduled.strftime("%Y-%m-%dT%H:%M:%SZ")
    job_name = slot_job_name(name, scheduled)
    job = kube.server.create(
        job_for_slot(cronjob, job_name, scheduled, "UTC"), cronjob["metadata"]["namespace"]
    )
    reference = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": job_name,
        "namespace": job["metadata"]["namespace"],
    }
    active = [*(cronjob.get("status") or {}).get("active", []), reference]
    kube.server.patch_status("cronjobs", name, {"active": active, "lastScheduleTime": stamp})
    created: dict[str, Any] = job
    return created


def finish(kube: Any, name: str, job_name: str, when: datetime) -> None:
    """The job controller marks the Job complete; the CronJob controller drops it from active."""
    kube.server.patch_status("jobs", job_name, COMPLETE)
    cronjob = kube.server.get("cronjobs", name)
    active = [ref for ref in (cronjob.get("status") or {}).get("active", []) if ref["name"] != job_name]
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    kube.server.patch_status("cronjobs", name, {"active": active or None, "lastSuccessfulTime": stamp})


def container_env(kube: Any, pod: dict[str, Any]) -> dict[str, str]:
    """The environment the kubelet would give the pod's container (values and label fieldRefs)."""
    env = {}
    for entry in pod["spec"]["containers"][0]["env"]:
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        elif "fieldRef" in entry.get("valueFrom", {}):
            match = re.fullmatch(
                r"metadata\.labels\['([^']+)'\]", entry["valueFrom"]["fieldRef"]["fieldPath"]
            )
            assert match is not None
            env[entry["name"]] = pod["metadata"]["labels"][match[1]]
    return env


def names(kube: Any, kind: str, selector: str | None = None) -> list[str]:
    return sorted(obj["metadata"]["name"] for obj in kube.server.list_objects(kind, label_selector=selector))


# --------------------------------------------------------------------------------- apply


def test_apply_creates_the_cronjob_that_kubectl_shows(
    kube: Any, schedules: CronJobs, settings: Settings, tmp_path: Path
) -> None:
    applied = schedules.apply(plan_of(manifest_of(), tmp_path), settings)
    assert (applied.name, applied.namespace, applied.created) == ("nightly", kube.namespace, True)

    listed = kube.kubectl("get", "cronjobs", "-l", "app.kubernetes.io/managed-by=runner", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    (cronjob,) = json.loads(listed.stdout)["items"]
    assert cronjob["metadata"]["name"] == "nightly"
    assert cronjob["metadata"]["labels"]["runner.dev/schedule"] == "nightly"
    spec = cronjob["spec"]
    assert (spec["schedule"], spec["timeZone"], spec["concurrencyPolicy"]) == (
        "0 2 * * *",
        "Asia/Seoul",
        "Forbid",
    )
    assert spec["startingDeadlineSeconds"] == 3600
    table = kube.kubectl("get", "cronjobs", "-l", "runner.dev/schedule=nightly")
    assert re.search(r"^nightly\s+0 2 \* \* \*\s+Asia/Seoul\s+False\s+0\s", table.stdout, re.MULTILINE), (
        table.stdout
    )

    config_map = kube.server.get("configmaps", applied.config_map)
    assert config_map["data"]["job.yaml"] == resolved_yaml(manifest_of())
    assert config_map["metadata"]["ownerReferences"] == [
        {"apiVersion": "batch/v1", "kind": "CronJob", "name": "nightly", "uid": cronjob["metadata"]["uid"]}
    ]
    volumes = spec["jobTemplate"]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "manifest", "configMap": {"name": applied.config_map}} in volumes


def test_apply_twice_updates_the_schedule_and_never_duplicates_it(
    kube: Any, schedules: CronJobs, settings: Settings, tmp_path: Path
) -> None:
    first = schedules.apply(plan_of(manifest_of(), tmp_path), settings)
    uid = kube.server.get("cronjobs", "nightly")["metadata"]["uid"]
    again = schedules.apply(plan_of(manifest_of(), tmp_path), settings)
    assert (again.created, again.config_map, again.removed) == (False, first.config_map, ())

    changed = manifest_of(schedule={**SCHEDULE, "cron": "30 3 * * 1-5", "concurrency": "Replace"})
    second = schedules.apply(plan_of(changed, tmp_path, image=IMAGE + "0"), settings)
    assert second.created is False
    assert names(kube, "cronjobs") == ["nightly"]
    stored = kube.server.get("cronjobs", "nightly")
    assert stored["metadata"]["uid"] == uid  # replaced in place, not deleted and created
    assert (stored["spec"]["schedule"], stored["spec"]["concurrencyPolicy"]) == ("30 3 * * 1-5", "Replace")
    assert stored["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE + "0"
    # The old manifest's ConfigMap goes (no run needs it), the new one is owned by the CronJob.
    assert second.config_map != first.config_map
    assert second.removed == (first.config_map,)
    assert names(kube, "configmaps", "runner.dev/schedule=nightly") == [second.config_map]


def test_a_configmap_stays_while_an_unfinished_run_mounts_it(
    kube: Any, schedules: CronJobs, settings: Settings, tmp_path: Path
) -> None:
    first = schedules.apply(plan_of(manifest_of(), tmp_path), settings)
    running = fire(kube, "nightly", datetime(2025, 6, 1, 17, 0, tzinfo=UTC))
    second = schedules.apply(plan_of(manifest_of(retries=2), tmp_path), settings)
    assert second.removed == ()
    assert names(kube, "configmaps", "runner.dev/schedule=nightly") == sorted(
        [first.config_map, second.config_map]
    )

    kube.server.patch_status("jobs", running["metadata"]["name"], COMPLETE)
    third = schedules.apply(plan_of(manifest_of(retries=2), tmp_path), settings)
    assert third.removed == (first.config_map,)


def test_apply_goes_to_the_namespace_asked_for_else_the_manifests(
    kube: Any, schedules: CronJobs, settings: Settings, tmp_path: Path
) -> None:
    for namespace in ("team-a", "team-b"):
        kube.server.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    manifest = manifest_of(kubernetes={"namespace": "team-a"})
    assert schedules.apply(plan_of(manifest, tmp_path), settings).namespace == "team-a"
    assert schedules.apply(plan_of(manifest, tmp_path), settings, namespace="team-b").namespace == "team-b"
    assert [view.namespace for view in schedules.list("team-a") + schedules.list("team-b")] == [
        "team-a",
        "team-b",
    ]
    assert schedules.list() == []  # the context's namespace has none


def test_apply_leaves_a_cronjob_that_is_not_the_runners_alone(
    kube: Any, schedules: CronJobs, settings: Settings, tmp_path: Path
) -> None:
    foreign = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly"},
        "spec": {
            "schedule": "@hourly",
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}
                    }
                }
            },
        },
    }
    kube.server.create(foreign, kube.namespace)
    with pytest.raises(BackendError, match="not a runner schedule") as caught:
        schedules.apply(plan_of(manifest_of(), tmp_path), settings)
    assert "metadata.name" in (caught.value.hint or "")
    assert kube.server.get("cronjobs", "nightly")["spec"]["schedule"] == "@hourly"
    for act in (
        lambda: schedules.trigger("nightly"),
        lambda: schedules.delete("nightly"),
        lambda: schedules.set_suspended("nightly", None, True),
    ):
        with pytest.raises(BackendError, match="not a runner schedule"):
            act()
    assert kube.server.find("cronjobs", "nightly") is not None


def test_a_manifest_without_a_schedule_or_an_image_is_refused_before_anything_is_sent(
    kube: Any, schedules: CronJobs, settings: Settings, tmp_path: Path
) -> None:
    plain = JobManifest.model_validate(
        {
            "apiVersion": "runner/v1",
            "kind": "Job",
            "metadata": {"name": "once"},
            "spec": {"command": ["true"]},
        }
    )
    with pytest.raises(UserError, match="no schedule") as caught:
        schedules.apply(plan_of(plain, tmp_path), settings)
    assert "spec.schedule" in (caught.value.hint or "")
    with pytest.raises(BackendError, match="prepared plan"):
        schedules.apply(plan_of(manifest_of(), tmp_path, image=None), settings)
    assert [r for r in kube.server.requests if r.method != "GET"] == []


def test_the_longest_name_fits_the_cronjob_and_the_names_of_its_runs(
    kube: Any, schedules: CronJobs, settings: Settings, tmp_path: Path
) -> None:
    name = "n" * 52  # the fake server refuses CronJob names over 52, as the real one does
    applied = schedules.apply(plan_of(manifest_of(name), tmp_path), settings)
    assert len(applied.config_map) == 63
    assert len(fire(kube, name, datetime(2025, 6, 1, 17, 0, tzinfo=UTC))["metadata"]["name"]) <= 63
    assert len(schedules.trigger(name)) == 52 + 7


# ------------------------------------------------------------------------- pause, resume, views


def test_pause_and_resume(kube: Any, schedules: CronJobs, settings: Settings, tmp_path: Path) -> None:
    schedules.apply(plan_of(manifest_of(), tmp_path), settings)
    paused = schedules.set_suspended("nightly", None, True)
    assert paused.suspended and paused.next_run is None
    suspended = kube.kubectl("get", "cronjob", "nightly", "-o", "jsonpath={.spec.suspend}")
    assert suspended.stdout == "true"

    resumed = schedules.set_suspended("nightly", kube.namespace, False)
    assert not resumed.suspended
    assert kube.kubectl("get", "cronjob", "nightly", "-o", "jsonpath={.spec.suspend}").stdout == "false"
    assert resumed.next_run == datetime(2025, 6, 2, 17, 0, tzinfo=UTC)  # 02:00 Tuesday in Seoul


def test_list_shows_each_schedule_with_its_runs(
    kube: Any, schedules: CronJobs, settings: Settings, tmp_path: Path
) -> None:
    schedules.apply(plan_of(manifest_of(), tmp_path), settings)
    schedules.apply(
        plan_of(manifest_of("weekly", schedule={"cron": "@weekly", "suspend": True}), tmp_path), settings
    )
    night = datetime(2025, 6, 1, 17, 0, tzinfo=UTC)
    done = fire(kube, "nightly", night)["metadata"]["name"]
    finish(kube, "nightly", done, datetime(2025, 6, 1, 17, 5, tzinfo=UTC))
    manual = schedules.trigger("nightly")

    nightly, weekly = schedules.list()
    assert (nightly.name, weekly.name) == ("nightly", "weekly")
    assert (nightly.cron, nightly.time_zone, nightly.concurrency, nightly.suspended) == (
        "0 2 * * *",
        "Asia/Seoul",
        "Forbid",
        False,
    )
    assert nightly.last_schedule == night
    assert nightly.last_successful == datetime(2025, 6, 1, 17, 5, tzinfo=UTC)
    assert nightly.active == (manual,)
    assert (nightly.last_run, nightly.last_result) == (manual, RunState.PENDING)
    assert nightly.next_run == datetime(2025, 6, 2, 17, 0, tzinfo=UTC)
    assert nightly.image == IMAGE
    assert (weekly.suspended, weekly.next_run, weekly.last_run, weekly.active) == (True, None, None, ())
    assert schedules.get("nightly") == nightly
    assert nightly.to_dict()["nextRun"] == "2025-06-02T17:00:00Z"
    assert nightly.to_dict()["lastResult"] == "pending"


def test_an_unknown_schedule_is_not_found_with_a_hint(kube: Any, schedules: CronJobs) -> None:
    for act in (
        lambda: schedules.get("nope"),
        lambda: schedules.trigger("nope"),
        lambda: schedules.set_suspended("nope", None, True),
        lambda: schedules.delete("nope"),
    ):
        with pytest.raises(
            NotFoundError, match=f"no schedule 'nope' in namespace {kube.namespace}"
        ) as caught:
            act()
        assert "runner schedule list" in (caught.value.hint or "")


def test_forbidden_says_how_to_get_the_rights(
    kube: Any, schedules: CronJobs, settings: Settings, tmp_path: Path
) -> None:
    kube.server.fail_next(1, 403, method="POST", path="/cronjobs$")
    with pytest.raises(BackendError, match="forbidden") as caught:
        schedules.apply(plan_of(manifest_of(), tmp_path), settings)
    assert "runner rbac" in (caught.value.hint or "")
    kube.server.fail_next(1, 403, method="GET", path="/cronjobs$")
    with pytest.raises(BackendError, match="listing the schedules"):
        schedules.list()


# ------------------------------------------------------------------------------ runs of schedules


def test_trigger_creates_a_labelled_run_whose_pod_knows_its_id(
    kube: Any, schedules: CronJobs, settings: Settings, tmp_path: Path
) -> None:
    schedules.apply(plan_of(manifest_of(), tmp_path), settings)
    schedules.set_suspended("nightly", None, True)  # a paused schedule can still be run by hand
    run = schedules.trigger("nightly")
    assert re.fullmatch(r"nightly-[a-z0-9]{6}", run)

    listed = kube.kubectl("get", "jobs", "-l", "runner.dev/schedule=nightly", "-o", "json")
    (job,) = json.loads(listed.stdout)["items"]
    assert job["metadata"]["name"] == run
    assert job["metadata"]["annotations"][INSTANTIATE_ANNOTATION] == "manual"
    assert job["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "runner"
    assert "runner.dev/run" not in job["metadata"]["labels"]
    cronjob = kube.server.get("cronjobs", "nightly")
    (owner,) = job["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("CronJob", cronjob["metadata"]["uid"], True)

    pod = kube.server.create_job_pod(run)
    env = container_env(kube, pod)
    assert env["RUNNER_RUN_ID"] == run
    assert env["RUNNER_JOB"] == "nightly"
    assert pod["metadata"]["labels"]["runner.dev/schedule"] == "nightly"


def test_a_cron_run_is_adopted_and_read_like_any_run(
    runner: Runner, kube: Any, schedules: CronJobs, settings: Settings, tmp_path: Path
) -> None:
    schedules.apply(plan_of(manifest_of(), tmp_path), settings)
    run = fire(kube, "nightly", datetime(2025, 6, 1, 17, 0, tzinfo=UTC))["metadata"]["name"]
    assert run == "nightly-29146620"

    found = runner("list", "--cluster", "-o", "json")
    assert found.code == 0, found.stderr
    (record,) = json.loads(found.stdout)
    assert (record["id"], record["job"], record["backend"], record["state"]) == (
        run,
        "nightly",
        "kubernetes",
        "pending",
    )
    assert record["labels"]["runner.dev/schedule"] == "nightly"
    assert record["labels"]["runner.dev/run"] == run

    pod = kube.server.create_job_pod(run)["metadata"]["name"]
    kube.server.set_pod_phase(pod, "Running")
    kube.server.set_log(pod, "epoch 1\n")
    doc = status_of(run)
    assert (doc["state"], doc["message"]) == ("running", "running on fake-node-1")
    assert runner("logs", run).stdout == "epoch 1\n"
    kube.server.set_pod_phase(pod, "Succeeded", exit_code=0)
    kube.server.patch_status("jobs", run, COMPLETE)
    assert status_of(run)["state"] == "succeeded"
    assert runner("list", "--cluster", "-o", "name").stdout.split() == [run]  # adopted once


def test_a_triggered_run_can_be_cancelled(
    runner: Runner, kube: Any, schedules: CronJobs, settings: Settings, tmp_path: Path
) -> None:
    schedules.apply(plan_of(manifest_of(), tmp_path), settings)
    run = schedules.trigger("nightly")
    assert runner("list", "--cluster", "-o", "name").stdout.split() == [run]
    cancelled = runner("cancel", run)
    assert cancelled.code == 0, cancelled.stderr
    assert kube.server.find("jobs", run) is None
    assert names(kube, "cronjobs") == ["nightly"]  # the schedule stays
    assert status_of(run)["state"] == "cancelled"


def test_delete_removes_the_cronjob_its_configmap_and_its_runs(
    kube: Any, schedules: CronJobs, settings: Settings, tmp_path: Path
) -> None:
    applied = schedules.apply(plan_of(manifest_of(), tmp_path), settings)
    scheduled = fire(kube, "nightly", datetime(2025, 6, 1, 17, 0, tzinfo=UTC))["metadata"]["name"]
    manual = schedules.trigger("nightly")
    pods = [kube.server.create_job_pod(run)["metadata"]["name"] for run in (scheduled, manual)]
    assert names(kube, "pods") == sorted(pods)

    schedules.delete("nightly")
    assert kube.kubectl("get", "cronjob", "nightly").returncode != 0
    assert kube.server.find("configmaps", applied.config_map) is None  # collected with its owner
    assert names(kube, "jobs") == []
    assert names(kube, "pods") == []


def test_delete_also_removes_a_configmap_an_interrupted_apply_left_unowned(
    kube: Any, schedules: CronJobs, settings: Settings, tmp_path: Path
) -> None:
    kube.server.fail_next(1, 403, method="POST", path="/cronjobs$")  # the apply stops after its ConfigMap
    with pytest.raises(BackendError):
        schedules.apply(plan_of(manifest_of(), tmp_path), settings)
    (left,) = names(kube, "configmaps", "runner.dev/schedule=nightly")
    schedules.apply(plan_of(manifest_of(retries=1), tmp_path), settings)  # a later apply removes it
    assert left not in names(kube, "configmaps")

    kube.server.fail_next(1, 403, method="PUT", path="/cronjobs/nightly$")  # the replace this time
    with pytest.raises(BackendError):
        schedules.apply(plan_of(manifest_of(retries=2), tmp_path), settings)
    assert len(names(kube, "configmaps", "runner.dev/schedule=nightly")) == 2
    schedules.delete("nightly")  # the ConfigMap of the cut apply has no owner: delete takes it too
    assert names(kube, "configmaps", "runner.dev/schedule=nightly") == []


# ------------------------------------------------------------------------------------------- RBAC


def _verb(method: str, named: bool, query: dict[str, str]) -> str:
    if method == "GET":
        return ("get" if named else "list") if query.get("watch") not in ("true", "1") else "watch"
    return {
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if named else "deletecollection",
    }[method]


def test_the_runners_role_allows_every_call_schedules_make(
    kube: Any, schedules: CronJobs, settings: Settings, tmp_path: Path
) -> None:
    schedules.apply(plan_of(manifest_of(), tmp_path), settings)
    running = fire(kube, "nightly", datetime(2025, 6, 1, 17, 0, tzinfo=UTC))
    schedules.apply(plan_of(manifest_of(retries=1), tmp_path), settings)  # replace, own, keep one
    kube.server.patch_status("jobs", running["metadata"]["name"], COMPLETE)
    schedules.apply(plan_of(manifest_of(retries=2), tmp_path), settings)  # and remove one
    schedules.set_suspended("nightly", None, True)
    schedules.trigger("nightly")
    schedules.list()
    schedules.get("nightly")
    schedules.delete("nightly")

    allowed = {
        (group, resource, verb)
        for rule in SUBMITTER_RULES
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    pattern = re.compile(
        r"^/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)/namespaces/[^/]+/(?P<resource>[^/]+)(?P<name>/[^/]+)?$"
    )
    used = set()
    for request in kube.server.requests:
        match = pattern.match(request.path)
        assert match is not None, request.path
        used.add(
            (
                match["group"] or "",
                match["resource"],
                _verb(request.method, bool(match["name"]), request.query),
            )
        )
    assert used <= allowed, used - allowed
    # every kind of call was made, so the check above covers them
    assert {verb for _, _, verb in used} == {"get", "list", "create", "update", "patch", "delete"}


# ---------------------------------------------------------------------------------- pure decisions


@pytest.mark.parametrize(
    ("cron", "zone", "after", "expected"),
    [
        ("0 2 * * *", "Asia/Seoul", NOW, datetime(2025, 6, 2, 17, 0, tzinfo=UTC)),
        ("0 2 * * *", "UTC", datetime(2025, 6, 2, 2, 0, tzinfo=UTC), datetime(2025, 6, 3, 2, 0, tzinfo=UTC)),
        # As a CronJob fires (robfig/cron v3, the wall clock): on the spring-forward night in Berlin
        # (2025-03-30, 02:00 -> 03:00) 02:30 does not exist and is skipped: next is 02:30 CEST on the 31st
        (
            "30 2 * * *",
            "Europe/Berlin",
            datetime(2025, 3, 29, 23, 0, tzinfo=UTC),
            datetime(2025, 3, 31, 0, 30, tzinfo=UTC),
        ),
        # fall back (2025-10-26, 03:00 -> 02:00): 02:30 comes twice, and a CronJob fires at both
        (
            "30 2 * * *",
            "Europe/Berlin",
            datetime(2025, 10, 25, 23, 0, tzinfo=UTC),
            datetime(2025, 10, 26, 0, 30, tzinfo=UTC),
        ),
        (
            "30 2 * * *",
            "Europe/Berlin",
            datetime(2025, 10, 26, 0, 30, tzinfo=UTC),
            datetime(2025, 10, 26, 1, 30, tzinfo=UTC),
        ),
        # inside the fold's second pass, the next quarter hour is after the fold, not back in it
        (
            "*/15 * * * *",
            "Europe/Berlin",
            datetime(2025, 10, 26, 1, 20, tzinfo=UTC),
            datetime(2025, 10, 26, 1, 30, tzinfo=UTC),
        ),
        ("0 0 30 2 *", "UTC", NOW, None),  # never
        ("0 0 * * *", "Not/AZone", NOW, None),
    ],
)
def test_next_cronjob_fire(cron: str, zone: str, after: datetime, expected: datetime | None) -> None:
    assert next_cronjob_fire(cron, zone, after) == expected


def cronjob_dict(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "nightly",
            "namespace": "ml",
            "uid": "u-1",
            "labels": {"runner.dev/job": "nightly"},
        },
        "spec": {
            "schedule": "0 2 * * *",
            "suspend": False,
            "concurrencyPolicy": "Forbid",
            "jobTemplate": {
                "metadata": {"labels": {"runner.dev/schedule": "nightly"}, "annotations": {"a": "b"}},
                "spec": {"template": {"spec": {"containers": [{"name": "job", "image": "img"}]}}},
            },
        },
        "status": status,
    }


def job_dict(
    name: str, created: str, status: dict[str, Any] | None = None, config_map: str = "cm"
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "spec": {
            "template": {"spec": {"volumes": [{"name": "manifest", "configMap": {"name": config_map}}]}}
        },
        "status": status or {},
    }


def test_a_view_without_runs() -> None:
    view = cronjob_view(cronjob_dict(), [], NOW)
    assert (view.time_zone, view.last_run, view.last_result, view.active) == ("UTC", None, None, ())
    assert view.next_run == datetime(2025, 6, 3, 2, 0, tzinfo=UTC)
    assert view.job == "nightly" and view.image == "img"


def test_the_last_run_is_the_newest_and_its_state_is_the_jobs() -> None:
    jobs = [
        job_dict("nightly-2", "2025-06-02T02:00:00Z", {"active": 1}),
        job_dict("nightly-1", "2025-06-01T02:00:00Z", {"conditions": [{"type": "Failed", "status": "True"}]}),
    ]
    view = cronjob_view(cronjob_dict(active=[{"name": "nightly-2"}]), jobs, NOW)
    assert (view.last_run, view.last_result, view.active) == ("nightly-2", RunState.RUNNING, ("nightly-2",))
    assert job_state(jobs[1]) == RunState.FAILED


def test_a_manual_job_is_what_kubectl_create_job_from_cronjob_makes() -> None:
    job = manual_job(cronjob_dict(), "nightly-abc123")
    assert job["metadata"] == {
        "name": "nightly-abc123",
        "namespace": "ml",
        "labels": {"runner.dev/schedule": "nightly"},
        "annotations": {"cronjob.kubernetes.io/instantiate": "manual", "a": "b"},
        "ownerReferences": [
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "name": "nightly",
                "uid": "u-1",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    assert job["spec"] == cronjob_dict()["spec"]["jobTemplate"]["spec"]
    without_uid = cronjob_dict()
    del without_uid["metadata"]["uid"]
    with pytest.raises(ValueError, match="uid"):
        manual_job(without_uid, "x")


def test_unused_config_maps_spare_the_current_one_and_those_unfinished_runs_mount() -> None:
    maps = [{"metadata": {"name": name}} for name in ("cm-new", "cm-old", "cm-older", "cm-mounted")]
    jobs = [
        job_dict("a", "2025-06-01T00:00:00Z", {"active": 1}, config_map="cm-mounted"),
        job_dict("b", "2025-06-01T00:00:00Z", COMPLETE, config_map="cm-old"),
    ]
    assert unused_config_maps(maps, jobs, "cm-new") == ["cm-old", "cm-older"]
