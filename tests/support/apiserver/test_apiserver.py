# The generated client types every field Optional and takes models, not the dicts sent here:
# mypy: disable-error-code="union-attr,arg-type,index,no-untyped-call"
"""The fake API server, driven by the official `kubernetes` Python client: what runner's Kubernetes backend
relies on must behave as a real API server does (status codes, metadata, selectors, watches, deletion)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import urllib3
from kubernetes import client, watch
from kubernetes.client import ApiException

from tests.support.apiserver.fixtures import Kube
from tests.support.apiserver.objects import MANAGED, cronjob_body, job_body


def status_of(error: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(error.body)
    return body


@pytest.fixture
def batch(kube: Kube) -> client.BatchV1Api:
    return client.BatchV1Api(kube.api_client())


@pytest.fixture
def core(kube: Kube) -> client.CoreV1Api:
    return client.CoreV1Api(kube.api_client())


class Watcher:
    """Collects a stream's events (a watch, a log follow) on a thread, from once the server holds it open;
    finish() ends it cleanly on the server (delivering what was written before) and returns the events."""

    def __init__(self, kube: Kube, stream: Callable[[], Iterator[Any]]) -> None:
        self.kube = kube
        self.events: list[Any] = []
        self.error: BaseException | None = None
        started = kube.server.streams_started

        def run() -> None:
            try:
                self.events.extend(stream())
            except BaseException as exc:
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        kube.server.wait_for_streams(started + 1, started=True)

    def join(self, timeout: float = 15) -> list[Any]:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the stream did not end"
        return self.events

    def finish(self) -> list[Any]:
        self.kube.server.drop_watches()
        return self.join()


# --- CRUD and metadata -----------------------------------------------------------------------------------


def test_job_lifecycle_through_the_client(kube: Kube, batch: client.BatchV1Api) -> None:
    ns = kube.namespace
    created = batch.create_namespaced_job(ns, job_body("mnist"))
    meta = created.metadata
    assert meta.namespace == ns and meta.uid and meta.creation_timestamp and meta.generation == 1
    assert int(meta.resource_version) > 0
    assert created.spec.selector.match_labels == {"batch.kubernetes.io/controller-uid": meta.uid}
    labels = created.spec.template.metadata.labels
    assert labels["job-name"] == labels["batch.kubernetes.io/job-name"] == "mnist"
    assert created.spec.backoff_limit == 6 and created.spec.completions == 1

    fetched = batch.read_namespaced_job("mnist", ns)
    assert fetched.metadata.uid == meta.uid

    listed = batch.list_namespaced_job(ns)
    assert [j.metadata.name for j in listed.items] == ["mnist"]
    assert int(listed.metadata.resource_version) >= int(meta.resource_version)

    relabelled = batch.patch_namespaced_job("mnist", ns, {"metadata": {"labels": {"team": "vision"}}})
    assert relabelled.metadata.labels["team"] == "vision"
    assert relabelled.metadata.generation == 1, "a metadata change leaves generation alone"
    assert int(relabelled.metadata.resource_version) > int(meta.resource_version)

    resized = batch.patch_namespaced_job(
        "mnist", ns, [{"op": "replace", "path": "/spec/parallelism", "value": 2}]
    )
    assert resized.spec.parallelism == 2 and resized.metadata.generation == 2

    merged = batch.patch_namespaced_job(
        "mnist", ns, {"spec": {"activeDeadlineSeconds": 60}}, _content_type="application/merge-patch+json"
    )
    assert merged.spec.active_deadline_seconds == 60 and merged.metadata.generation == 3

    batch.delete_namespaced_job("mnist", ns, propagation_policy="Background")
    with pytest.raises(ApiException) as missing:
        batch.read_namespaced_job("mnist", ns)
    assert missing.value.status == 404


def test_error_statuses_are_real_status_objects(kube: Kube, batch: client.BatchV1Api) -> None:
    ns = kube.namespace
    batch.create_namespaced_job(ns, job_body("mnist"))

    with pytest.raises(ApiException) as duplicate:
        batch.create_namespaced_job(ns, job_body("mnist"))
    assert duplicate.value.status == 409
    assert status_of(duplicate.value) | {"details": None} == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'jobs.batch "mnist" already exists',
        "reason": "AlreadyExists",
        "code": 409,
        "details": None,
    }

    with pytest.raises(ApiException) as missing:
        batch.read_namespaced_job("nope", ns)
    assert status_of(missing.value)["reason"] == "NotFound"
    assert status_of(missing.value)["message"] == 'jobs.batch "nope" not found'

    with pytest.raises(ApiException) as bad_name:
        batch.create_namespaced_job(ns, job_body("Bad_Name"))
    assert bad_name.value.status == 422
    invalid = status_of(bad_name.value)
    assert invalid["reason"] == "Invalid"
    assert invalid["details"]["causes"][0]["field"] == "metadata.name"

    no_policy = job_body("no-policy")
    del no_policy["spec"]["template"]["spec"]["restartPolicy"]
    with pytest.raises(ApiException) as required:
        batch.create_namespaced_job(ns, no_policy)
    assert status_of(required.value)["details"]["causes"][0]["field"] == "spec.template.spec.restartPolicy"

    with pytest.raises(ApiException) as immutable:
        batch.patch_namespaced_job(
            "mnist", ns, {"spec": {"template": {"spec": {"restartPolicy": "OnFailure"}}}}
        )
    assert immutable.value.status == 422 and "field is immutable" in status_of(immutable.value)["message"]

    with pytest.raises(ApiException) as no_namespace:
        batch.create_namespaced_job("elsewhere", job_body("x"))
    assert no_namespace.value.status == 404
    assert status_of(no_namespace.value)["message"] == 'namespaces "elsewhere" not found'


def test_update_with_a_stale_resource_version_conflicts(kube: Kube, batch: client.BatchV1Api) -> None:
    ns = kube.namespace
    first = batch.create_namespaced_job(ns, job_body("mnist"))
    batch.patch_namespaced_job("mnist", ns, {"metadata": {"labels": {"a": "b"}}})
    first.metadata.labels["stale"] = "yes"
    with pytest.raises(ApiException) as stale:
        batch.replace_namespaced_job("mnist", ns, first)
    assert stale.value.status == 409 and status_of(stale.value)["reason"] == "Conflict"

    fresh = batch.read_namespaced_job("mnist", ns)
    fresh.metadata.labels["fresh"] = "yes"
    replaced = batch.replace_namespaced_job("mnist", ns, fresh)
    assert replaced.metadata.labels["fresh"] == "yes"
    assert int(replaced.metadata.resource_version) > int(fresh.metadata.resource_version)


def test_generate_name_dry_run_and_no_op_updates(kube: Kube, batch: client.BatchV1Api) -> None:
    ns = kube.namespace
    body = job_body("")
    body["metadata"] = {"generateName": "mnist-", "labels": MANAGED}
    generated = batch.create_namespaced_job(ns, body)
    assert generated.metadata.name.startswith("mnist-") and len(generated.metadata.name) == len("mnist-") + 5

    dry = batch.create_namespaced_job(ns, job_body("dry"), dry_run="All")
    assert dry.metadata.uid
    assert kube.server.find("jobs", "dry") is None

    same = batch.patch_namespaced_job(generated.metadata.name, ns, {"metadata": {"labels": MANAGED}})
    assert same.metadata.resource_version == generated.metadata.resource_version


def test_status_subresource(kube: Kube, batch: client.BatchV1Api) -> None:
    ns = kube.namespace
    batch.create_namespaced_job(ns, job_body("mnist"))
    status = {"status": {"active": 1, "startTime": "2026-01-01T00:00:00Z"}, "spec": {"parallelism": 5}}
    patched = batch.patch_namespaced_job_status("mnist", ns, status)
    assert patched.status.active == 1 and patched.spec.parallelism == 1, "status writes change only status"

    ignored = batch.patch_namespaced_job("mnist", ns, {"status": {"active": 7}})
    assert ignored.status.active == 1, "main resource writes leave status alone"
    assert kube.server.get("jobs", "mnist")["status"]["active"] == 1


# --- selectors and pagination ----------------------------------------------------------------------------


def test_label_and_field_selectors(kube: Kube, batch: client.BatchV1Api, core: client.CoreV1Api) -> None:
    ns = kube.namespace
    batch.create_namespaced_job(ns, job_body("a", {"app": "a", "tier": "gpu"}))
    batch.create_namespaced_job(ns, job_body("b", {"app": "b"}))
    batch.create_namespaced_job(ns, job_body("c", {"app": "c"}))

    def names(**kwargs: str) -> list[str]:
        return [str(j.metadata.name) for j in batch.list_namespaced_job(ns, **kwargs).items]

    assert names(label_selector="app.kubernetes.io/managed-by=runner") == ["a", "b", "c"]
    assert names(label_selector="app=a") == ["a"]
    assert names(label_selector="app==b") == ["b"]
    assert names(label_selector="app!=a") == ["b", "c"]
    assert names(label_selector="app in (a, c)") == ["a", "c"]
    assert names(label_selector="app notin (a,c)") == ["b"]
    assert names(label_selector="tier") == ["a"]
    assert names(label_selector="!tier,app in (a,b)") == ["b"]
    assert names(field_selector="metadata.name=c") == ["c"]
    assert names(field_selector="metadata.name!=c,metadata.namespace=" + ns) == ["a", "b"]
    with pytest.raises(ApiException) as unsupported:
        names(field_selector="spec.parallelism=1")
    assert unsupported.value.status == 400

    for job in ("a", "b"):
        kube.server.create_job_pod(job)
    first = kube.server.pods_of("a")[0]["metadata"]["name"]
    kube.server.set_pod_phase(first, "Running")
    running = core.list_namespaced_pod(ns, field_selector="status.phase=Running")
    assert [p.metadata.name for p in running.items] == [first]
    everywhere = core.list_pod_for_all_namespaces(label_selector="job-name=b")
    assert len(everywhere.items) == 1


def test_pagination_with_limit_and_continue(kube: Kube, core: client.CoreV1Api) -> None:
    ns = kube.namespace
    for index in range(5):
        core.create_namespaced_config_map(ns, {"metadata": {"name": f"cm-{index}", "labels": MANAGED}})
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = core.list_namespaced_config_map(
            ns, label_selector="app.kubernetes.io/managed-by", limit=2, _continue=token
        )
        seen += [str(c.metadata.name) for c in page.items]
        pages += 1
        token = page.metadata._continue
        if not token:
            break
        assert page.metadata.remaining_item_count == 5 - len(seen)
    assert pages == 3 and seen == [f"cm-{i}" for i in range(5)]

    first = core.list_namespaced_config_map(ns, limit=2)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "later"}})
    kube.server.expire_history()  # the snapshot the token points into is compacted away
    with pytest.raises(ApiException) as expired:
        core.list_namespaced_config_map(ns, limit=2, _continue=first.metadata._continue)
    assert expired.value.status == 410


# --- watch -----------------------------------------------------------------------------------------------


def test_watch_sees_added_modified_deleted(kube: Kube, batch: client.BatchV1Api) -> None:
    ns = kube.namespace
    start = batch.list_namespaced_job(ns).metadata.resource_version
    watcher = Watcher(
        kube,
        lambda: watch.Watch().stream(
            batch.list_namespaced_job, ns, resource_version=start, timeout_seconds=60, label_selector="app=a"
        ),
    )
    batch.create_namespaced_job(ns, job_body("mnist", {"app": "a"}))
    batch.create_namespaced_job(ns, job_body("other", {"app": "b"}))
    batch.patch_namespaced_job("mnist", ns, {"metadata": {"annotations": {"seen": "yes"}}})
    batch.patch_namespaced_job("other", ns, {"metadata": {"labels": {"app": "a"}}})  # enters the selection
    batch.delete_namespaced_job("mnist", ns, propagation_policy="Background")
    events = watcher.finish()
    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("ADDED", "mnist"),
        ("MODIFIED", "mnist"),
        ("ADDED", "other"),
        ("DELETED", "mnist"),
    ]
    assert events[0]["raw_object"]["kind"] == "Job" and events[0]["raw_object"]["apiVersion"] == "batch/v1"
    versions = [int(e["object"].metadata.resource_version) for e in events]
    assert versions == sorted(versions)


def test_watch_from_expired_resource_version_is_410(kube: Kube, batch: client.BatchV1Api) -> None:
    ns = kube.namespace
    old = batch.list_namespaced_job(ns).metadata.resource_version
    batch.create_namespaced_job(ns, job_body("mnist"))
    kube.server.expire_history()
    with pytest.raises(ApiException) as gone:
        # no timeout_seconds: the client retries once from the same version, then raises
        for _ in watch.Watch().stream(batch.list_namespaced_job, ns, resource_version=old):
            pytest.fail("no event may arrive from an expired resourceVersion")
    assert gone.value.status == 410

    fresh = batch.list_namespaced_job(ns)  # re-list, then watch from the list's version
    assert [j.metadata.name for j in fresh.items] == ["mnist"]
    rv = fresh.metadata.resource_version
    watcher = Watcher(
        kube,
        lambda: watch.Watch().stream(batch.list_namespaced_job, ns, resource_version=rv, timeout_seconds=60),
    )
    batch.patch_namespaced_job("mnist", ns, {"metadata": {"labels": {"after": "relist"}}})
    assert [(e["type"], e["object"].metadata.labels["after"]) for e in watcher.finish()] == [
        ("MODIFIED", "relist")
    ]


def test_watch_without_version_lists_first_and_bookmarks(kube: Kube, batch: client.BatchV1Api) -> None:
    ns = kube.namespace
    batch.create_namespaced_job(ns, job_body("mnist"))
    watcher = Watcher(kube, lambda: watch.Watch().stream(batch.list_namespaced_job, ns, timeout_seconds=60))
    assert [(e["type"], e["object"].metadata.name) for e in watcher.finish()] == [("ADDED", "mnist")]

    kube.server.bookmark_interval = 0.2
    raw = kube.api_client().call_api(
        "GET",
        f"{kube.url}/apis/batch/v1/namespaces/{ns}/jobs?watch=1&sendInitialEvents=true&allowWatchBookmarks=true"
        "&resourceVersionMatch=NotOlderThan&timeoutSeconds=1",
    )
    frames = [json.loads(line) for line in raw.read().decode().splitlines()]
    assert frames[0]["type"] == "ADDED"
    assert frames[1]["type"] == "BOOKMARK"
    assert frames[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert {f["type"] for f in frames[2:]} == {"BOOKMARK"} and len(frames) > 2


def test_dropped_watches_end_cleanly_or_abruptly(kube: Kube, batch: client.BatchV1Api) -> None:
    ns = kube.namespace
    start = batch.list_namespaced_job(ns).metadata.resource_version

    def stream() -> Iterator[Any]:
        events: Iterator[Any] = watch.Watch().stream(
            batch.list_namespaced_job, ns, resource_version=start, timeout_seconds=30
        )
        return events

    clean = Watcher(kube, stream)
    kube.server.drop_watches()
    assert clean.join(5) == [] and clean.error is None

    cut = Watcher(kube, stream)
    kube.server.drop_watches(abrupt=True)
    cut.join(5)
    assert isinstance(cut.error, urllib3.exceptions.HTTPError), cut.error


# --- deletion --------------------------------------------------------------------------------------------


def test_foreground_deletion_waits_for_the_pods(
    kube: Kube, batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    ns = kube.namespace
    batch.create_namespaced_job(ns, job_body("mnist"))
    free = kube.server.create_job_pod("mnist", phase="Running")["metadata"]["name"]
    held = kube.server.create_job_pod("mnist")["metadata"]["name"]
    core.patch_namespaced_pod(held, ns, {"metadata": {"finalizers": ["test.runner.dev/hold"]}})

    batch.delete_namespaced_job("mnist", ns, propagation_policy="Foreground")
    deleting = batch.read_namespaced_job("mnist", ns)
    assert deleting.metadata.deletion_timestamp is not None
    assert deleting.metadata.finalizers == ["foregroundDeletion"]
    assert kube.server.find("pods", free) is None
    assert core.read_namespaced_pod(held, ns).metadata.deletion_timestamp is not None

    core.patch_namespaced_pod(held, ns, {"metadata": {"finalizers": None}})
    assert kube.server.find("pods", held) is None
    assert kube.server.find("jobs", "mnist") is None


def test_background_deletes_pods_and_the_default_orphans_them(kube: Kube, batch: client.BatchV1Api) -> None:
    ns = kube.namespace
    batch.create_namespaced_job(ns, job_body("background"))
    kube.server.create_job_pod("background")
    batch.delete_namespaced_job("background", ns, propagation_policy="Background")
    assert kube.server.list_objects("pods") == []

    batch.create_namespaced_job(ns, job_body("default"))
    pod = kube.server.create_job_pod("default")["metadata"]["name"]
    _, _, headers = batch.delete_namespaced_job_with_http_info("default", ns)
    assert "child pods are preserved by default" in headers["Warning"]
    left = kube.server.get("pods", pod)
    assert "ownerReferences" not in left["metadata"], "batch/v1 Jobs orphan their pods unless told otherwise"


def test_namespace_deletion_removes_its_contents(kube: Kube, core: client.CoreV1Api) -> None:
    core.create_namespace({"metadata": {"name": "scratch"}})
    assert [s.metadata.name for s in core.list_namespaced_service_account("scratch").items] == ["default"]
    core.create_namespaced_secret("scratch", {"metadata": {"name": "s"}, "stringData": {"token": "abc"}})
    assert core.read_namespaced_secret("s", "scratch").data == {"token": "YWJj"}
    core.delete_namespace("scratch")
    assert kube.server.list_objects("secrets", "scratch") == []
    with pytest.raises(ApiException) as gone:
        core.read_namespace("scratch")
    assert gone.value.status == 404


# --- pod logs --------------------------------------------------------------------------------------------


def test_pod_logs_read_tail_and_follow(kube: Kube, batch: client.BatchV1Api, core: client.CoreV1Api) -> None:
    ns = kube.namespace
    batch.create_namespaced_job(ns, job_body("mnist"))
    pod = kube.server.create_job_pod("mnist")["metadata"]["name"]
    with pytest.raises(ApiException) as waiting:
        kube.server.set_pod_phase(pod, "Pending", node="gpu-node-1")
        core.read_namespaced_pod_log(pod, ns)
    assert (
        waiting.value.status == 400
        and "is waiting to start: ContainerCreating" in status_of(waiting.value)["message"]
    )

    kube.server.set_pod_phase(pod, "Running")
    kube.server.set_log(pod, "epoch 1/3\nepoch 2/3\n")
    assert core.read_namespaced_pod_log(pod, ns) == "epoch 1/3\nepoch 2/3\n"
    assert core.read_namespaced_pod_log(pod, ns, tail_lines=1, container="main") == "epoch 2/3\n"

    follower = Watcher(kube, lambda: watch.Watch().stream(core.read_namespaced_pod_log, pod, ns))
    kube.server.append_log(pod, "epoch 3/3\n")
    kube.server.append_log(pod, "saved model\n")
    kube.server.set_pod_phase(pod, "Succeeded")
    assert follower.join() == ["epoch 1/3", "epoch 2/3", "epoch 3/3", "saved model"]


# --- faults ----------------------------------------------------------------------------------------------


def test_server_errors_then_success(kube: Kube) -> None:
    ns = kube.namespace
    kube.server.create(job_body("mnist"))
    path = "/jobs/mnist$"

    fault = kube.server.fail_next(2, 500, method="GET", path=path)
    retrying = urllib3.Retry(total=3, status_forcelist=[500], backoff_factor=0, raise_on_status=False)
    batch = client.BatchV1Api(kube.api_client(retries=retrying))
    assert batch.read_namespaced_job("mnist", ns).metadata.name == "mnist"
    assert fault.hits == 2

    kube.server.fail_next(1, 500, path=path)
    plain = client.BatchV1Api(kube.api_client())
    with pytest.raises(ApiException) as failed:
        plain.read_namespaced_job("mnist", ns)
    assert failed.value.status == 500 and status_of(failed.value)["reason"] == "InternalError"
    assert plain.read_namespaced_job("mnist", ns).metadata.name == "mnist"  # a manual retry

    kube.server.fail_next(1, None, path=path, reset=True)
    assert plain.read_namespaced_job("mnist", ns).metadata.name == "mnist", "urllib3 retries a cut connection"


def test_too_many_requests_with_retry_after(kube: Kube) -> None:
    ns = kube.namespace
    kube.server.create(job_body("mnist"))
    path = "/jobs/mnist$"

    kube.server.fail_next(1, 429, path=path)
    with pytest.raises(ApiException) as throttled:
        client.BatchV1Api(kube.api_client()).read_namespaced_job("mnist", ns)
    assert throttled.value.status == 429 and status_of(throttled.value)["reason"] == "TooManyRequests"

    kube.server.fail_next(1, 429, path=path, retry_after=3)
    with pytest.raises(ApiException) as told:
        client.BatchV1Api(kube.api_client(retries=False)).read_namespaced_job("mnist", ns)
    assert told.value.headers["Retry-After"] == "3"
    assert status_of(told.value)["details"] == {"retryAfterSeconds": 3}

    # urllib3 (under the client) honours Retry-After on 429 by itself
    fault = kube.server.fail_next(2, 429, path=path, retry_after=0)
    assert client.BatchV1Api(kube.api_client()).read_namespaced_job("mnist", ns).metadata.name == "mnist"
    assert fault.hits == 2

    # the client's client-go mode retries reads on any 5xx that carries Retry-After
    fault = kube.server.fail_next(2, 503, path=path, retry_after=0)
    polite = client.BatchV1Api(kube.api_client(client_go_retries=True))
    assert polite.read_namespaced_job("mnist", ns).metadata.name == "mnist"
    assert fault.hits == 2


# --- other types -----------------------------------------------------------------------------------------


def test_cronjobs_are_validated_and_defaulted(kube: Kube, batch: client.BatchV1Api) -> None:
    ns = kube.namespace
    created = batch.create_namespaced_cron_job(ns, cronjob_body("nightly", timeZone="Asia/Seoul"))
    assert created.spec.concurrency_policy == "Allow" and created.spec.successful_jobs_history_limit == 3
    for schedule, zone, field in (
        ("0 2 * *", None, "spec.schedule"),
        ("CRON_TZ=UTC 0 2 * * *", None, "spec.schedule"),
        ("0 2 * * *", "Mars/Olympus", "spec.timeZone"),
    ):
        body = cronjob_body("bad", schedule, **({"timeZone": zone} if zone else {}))
        with pytest.raises(ApiException) as refused:
            batch.create_namespaced_cron_job(ns, body)
        assert status_of(refused.value)["details"]["causes"][0]["field"] == field


def test_binding_schedules_a_pod(kube: Kube, core: client.CoreV1Api) -> None:
    ns = kube.namespace
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "main", "image": "busybox"}]}}
    created = core.create_namespaced_pod(ns, pod)
    assert created.status.phase == "Pending" and created.status.qos_class == "BestEffort"
    assert created.spec.restart_policy == "Always" and created.spec.service_account_name == "default"
    assert core.read_namespaced_pod_log("p", ns) == "", "an unscheduled pod has an empty log"

    binding = {"metadata": {"name": "p"}, "target": {"kind": "Node", "name": "gpu-node-1"}}
    core.create_namespaced_pod_binding("p", ns, binding, _preload_content=False)
    bound = core.read_namespaced_pod("p", ns)
    assert bound.spec.node_name == "gpu-node-1"
    assert [(c.type, c.status) for c in bound.status.conditions] == [("PodScheduled", "True")]

    with pytest.raises(ApiException) as forbidden:
        core.patch_namespaced_pod("p", ns, {"spec": {"restartPolicy": "Never"}})
    assert (
        forbidden.value.status == 422
        and "pod updates may not change fields" in status_of(forbidden.value)["message"]
    )


def test_a_slow_answer_times_out_and_the_retry_succeeds(kube: Kube) -> None:
    kube.server.create(job_body("mnist"))
    slow = kube.server.fail_next(1, None, method="GET", path="/jobs/mnist$", delay=1.0)
    batch = client.BatchV1Api(kube.api_client())
    # urllib3 retries a GET whose read timed out; the second request is answered at once
    assert batch.read_namespaced_job("mnist", kube.namespace, _request_timeout=0.2).metadata.name == "mnist"
    assert slow.hits == 1

    kube.server.fail_next(1, None, path="/jobs/mnist$", delay=1.0)
    impatient = client.BatchV1Api(kube.api_client(retries=False))
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        impatient.read_namespaced_job("mnist", kube.namespace, _request_timeout=0.2)
