"""The client as runner uses it, against a small local HTTP server: 429 and 5xx answers are retried, an
answer cut mid-body is read again, and a refused connection is said at once rather than after the backoff
of every retry."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import urllib3
import yaml

from runner.backends.kubernetes import client as kube_client
from runner.backends.kubernetes.client import (
    JOBS_PATH,
    METADATA,
    api_error,
    apis,
    cut_managed_fields,
    get_json,
    list_metadata,
    list_pages,
    read_json,
    without_managed_fields,
)
from tests.support.apiserver.fixtures import Kube, kube  # noqa: F401  (fixture)

LISTING = {
    "kind": "JobList",
    "apiVersion": "batch/v1",
    "metadata": {},
    "items": [{"metadata": {"name": "a"}}],
}


class Script:
    """What the server answers, one entry per request: (status, body, cut) where cut sends only the first
    bytes of a body its Content-Length announces whole, then closes the connection."""

    def __init__(self, *answers: tuple[int, bytes, bool]) -> None:
        self.answers = list(answers)
        self.paths: list[str] = []
        self.accepts: list[str] = []
        self.on_request: Callable[[], object] = lambda: None  # called once a request is recorded


def serve(script: Script) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            script.paths.append(self.path)
            script.accepts.append(self.headers.get("Accept", ""))
            script.on_request()
            status, body, cut = script.answers.pop(0) if script.answers else (200, b"{}", False)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if status == 429:
                self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(body[: len(body) // 2] if cut else body)
            if cut:
                self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def use_kubeconfig(url: str, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": url}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "ml"}}],
        "current-context": "c",
    }
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.setattr(kube_client, "_CLIENTS", {})


@pytest.fixture
def script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Script]:
    answers = Script()
    server = serve(answers)
    use_kubeconfig(f"http://127.0.0.1:{server.server_address[1]}", tmp_path / "config", monkeypatch)
    yield answers
    server.shutdown()
    server.server_close()


def test_429_and_5xx_answers_are_retried(script: Script) -> None:
    body = json.dumps(LISTING).encode()
    script.answers += [(503, b"{}", False), (429, b"{}", False), (200, body, False)]
    batch, _ = apis(None)
    assert read_json(batch.list_namespaced_job, "ml") == LISTING
    assert len(script.paths) == 3


def test_an_answer_cut_mid_body_is_read_again(script: Script) -> None:
    body = json.dumps(LISTING).encode()
    script.answers += [(200, body, True), (200, body, True), (200, body, False)]
    listed = list_pages(None, JOBS_PATH, "ml", "runner.dev/run=a")
    assert [job["metadata"]["name"] for job in listed] == ["a"]
    assert (
        script.paths == ["/apis/batch/v1/namespaces/ml/jobs?labelSelector=runner.dev/run%3Da&limit=500"] * 3
    )


MANAGED = [
    {
        "manager": "kube-controller-manager",
        "operation": "Update",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:status": {"f:conditions": {'k:{"type":"Complete"}': {".": {}, "f:status": {}}}}},
        "subresource": "status",
    }
]


def metadata_list(names: list[str], token: str | None, *, managed: bool = True) -> dict[str, object]:
    """A PartialObjectMetadataList as the API server writes it: managedFields last in each metadata."""
    items = [
        {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {
                "name": name,
                "resourceVersion": str(index),
                "labels": {"runner.dev/run": name},
                **({"managedFields": MANAGED} if managed else {}),
            },
        }
        for index, name in enumerate(names)
    ]
    meta = {"continue": token} if token else {}
    return {
        "kind": "PartialObjectMetadataList",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "items": items,
    }


def test_metadata_comes_page_by_page_without_managed_fields(script: Script) -> None:
    first, second = metadata_list(["a", "b"], "next"), metadata_list(["c"], None)
    script.answers += [(200, json.dumps(first).encode(), False), (200, json.dumps(second).encode(), False)]
    listed = list(list_metadata(None, JOBS_PATH, "ml", "m=r"))
    assert [(m["name"], m["resourceVersion"], m["labels"]) for m in listed] == [
        ("a", "0", {"runner.dev/run": "a"}),
        ("b", "1", {"runner.dev/run": "b"}),
        ("c", "0", {"runner.dev/run": "c"}),
    ]
    assert all("managedFields" not in m for m in listed)
    assert script.paths == [
        "/apis/batch/v1/namespaces/ml/jobs?labelSelector=m%3Dr&limit=500",
        "/apis/batch/v1/namespaces/ml/jobs?labelSelector=m%3Dr&limit=500&continue=next",
    ]
    assert script.accepts == [METADATA] * 2
    assert METADATA == "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"


def test_metadata_from_a_server_without_partial_lists(script: Script) -> None:
    script.answers += [(200, json.dumps(LISTING).encode(), False)]  # a plain list: its items' metadata
    assert list(list_metadata(None, JOBS_PATH, "ml", "")) == [{"name": "a"}]


@pytest.mark.parametrize("separators", [(",", ":"), (", ", ": ")])
def test_managed_fields_are_cut_from_the_bytes_before_parsing(separators: tuple[str, str]) -> None:
    listing = metadata_list(["a", "b", "c"], None)
    data = json.dumps(listing, separators=separators).encode()
    cut = cut_managed_fields(data)
    assert cut is not None and b"managedFields" not in cut and len(cut) < len(data) / 2
    expected = metadata_list(["a", "b", "c"], None, managed=False)
    assert json.loads(cut) == expected == without_managed_fields(data)
    assert without_managed_fields(json.dumps(expected).encode()) == expected  # nothing to cut


def whole_job(name: str, *, managed: bool = True) -> dict[str, object]:
    """A Job as the API server writes it: managedFields last in metadata, then spec and status (whose
    pod template has a metadata of its own)."""
    return {
        "metadata": {
            "name": name,
            "labels": {"runner.dev/run": name},
            **({"managedFields": MANAGED} if managed else {}),
        },
        "spec": {
            "backoffLimit": 2,
            "template": {
                "metadata": {"labels": {"runner.dev/run": name}},
                "spec": {"containers": [{"name": "job", "args": ["]}}", ']},"spec":']}]},
            },
        },
        "status": {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1},
    }


@pytest.mark.parametrize("separators", [(",", ":"), (", ", ": ")])
def test_managed_fields_are_cut_from_whole_objects_too(separators: tuple[str, str]) -> None:
    """A list of whole Jobs, and one Job: each metadata ends its managedFields, followed by the spec; the
    spec's own lists and strings that look like a metadata's end stay whole."""
    head: dict[str, object] = {"kind": "JobList", "apiVersion": "batch/v1", "metadata": {}}
    listing = {**head, "items": [whole_job(name) for name in ("a", "b")]}
    expected = {**head, "items": [whole_job(name, managed=False) for name in ("a", "b")]}
    for answer, want in [(listing, expected), (whole_job("a"), whole_job("a", managed=False))]:
        data = json.dumps(answer, separators=separators).encode()
        cut = cut_managed_fields(data)
        assert cut is not None and b"managedFields" not in cut
        assert json.loads(cut) == want == without_managed_fields(data)


def test_lists_and_gets_parse_without_managed_fields(script: Script) -> None:
    listing = {"kind": "JobList", "apiVersion": "batch/v1", "metadata": {}, "items": [whole_job("a")]}
    script.answers += [(200, json.dumps(listing).encode(), False)]
    script.answers += [(200, json.dumps(whole_job("b")).encode(), False)]
    assert list(list_pages(None, JOBS_PATH, "ml", "")) == [whole_job("a", managed=False)]
    assert get_json(None, f"{JOBS_PATH}/b", "ml") == whole_job("b", managed=False)


def test_what_is_not_laid_out_as_the_server_writes_it_is_parsed_whole() -> None:
    """managedFields not last, a string in them that looks like an item's end, or a plain list: nothing
    is cut (or the cut does not parse), and the whole answer is parsed; no item is lost."""
    listing = metadata_list(["a", "b"], None)
    for item in listing["items"]:  # type: ignore[attr-defined]
        metadata = item["metadata"]
        item["metadata"] = {"managedFields": metadata.pop("managedFields"), **metadata}
    data = json.dumps(listing, separators=(",", ":")).encode()
    assert cut_managed_fields(data) is None  # it would reach into the next item
    assert [item["metadata"]["name"] for item in without_managed_fields(data)["items"]] == ["a", "b"]

    tricky = metadata_list(["a", "b"], None)
    tricky["items"][0]["metadata"]["managedFields"] = [{"manager": "x]}}y"}]  # type: ignore[index]
    data = json.dumps(tricky, separators=(",", ":")).encode()
    assert [item["metadata"]["name"] for item in without_managed_fields(data)["items"]] == ["a", "b"]
    assert cut_managed_fields(data := json.dumps(LISTING).encode()) == data  # nothing to cut


def test_the_fake_api_servers_metadata_lists_are_cut(kube: Kube) -> None:  # noqa: F811
    """The fake API server (managedFields on) answers the metadata-only Accept with a list that is cut."""
    kube.server.store.managed_fields = True
    for name in ("a", "b"):
        kube.server.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "labels": {"m": "r"}},
                "data": {"x": "y"},
            }
        )
    path = "/api/v1/namespaces/{namespace}/configmaps"
    data = get_json(None, path, kube.namespace, [("labelSelector", "m=r")], accept=METADATA, parse=bytes)
    assert b'"managedFields"' in data and cut_managed_fields(data) is not None
    listed = list(list_metadata(None, path, kube.namespace, "m=r"))
    assert [m["name"] for m in listed] == ["a", "b"] and all("managedFields" not in m for m in listed)
    assert all(
        m["resourceVersion"] == kube.server.get("configmaps", m["name"])["metadata"]["resourceVersion"]
        for m in listed
    )


def test_a_list_is_read_page_by_page(script: Script) -> None:
    first = {**LISTING, "metadata": {"continue": "next/page"}}
    second = {**LISTING, "items": [{"metadata": {"name": "b"}}]}
    script.answers += [(200, json.dumps(first).encode(), False), (200, json.dumps(second).encode(), False)]
    assert [job["metadata"]["name"] for job in list_pages(None, JOBS_PATH, "ml", "")] == ["a", "b"]
    assert script.paths[1].endswith("&limit=500&continue=next/page")
    assert script.accepts == ["application/json"] * 2


def test_the_next_page_is_asked_for_while_the_caller_works_through_this_one(script: Script) -> None:
    """Once the first object of a page is handed over, the next page's request is under way; a failed
    next page raises in the caller, after every object before it."""
    from kubernetes.client.exceptions import ApiException

    first = {**LISTING, "metadata": {"continue": "2"}, "items": [{"metadata": {"name": n}} for n in "ab"]}
    script.answers += [(200, json.dumps(first).encode(), False), (404, b"{}", False)]
    asked_twice = threading.Event()
    script.on_request = lambda: asked_twice.set() if len(script.paths) == 2 else None
    pages = list_pages(None, JOBS_PATH, "ml", "")
    taken = [next(pages)["metadata"]["name"]]
    assert asked_twice.wait(10)  # while "b", of the first page, is not taken yet
    with pytest.raises(ApiException) as raised:
        for job in pages:
            taken.append(job["metadata"]["name"])
    assert taken == ["a", "b"] and raised.value.status == 404
    assert script.paths[1].endswith("&continue=2")


def test_an_error_answer_raises_as_the_api_methods_do(script: Script) -> None:
    from kubernetes.client.exceptions import ApiException

    script.answers += [(404, b'{"kind":"Status","reason":"NotFound"}', False)]
    with pytest.raises(ApiException) as raised:
        get_json(None, f"{JOBS_PATH}/gone", "ml")
    assert raised.value.status == 404
    assert script.paths == ["/apis/batch/v1/namespaces/ml/jobs/gone"]


def test_an_answer_cut_every_time_fails_after_a_few_reads(script: Script) -> None:
    body = json.dumps(LISTING).encode()
    script.answers += [(200, body, True)] * 10
    batch, _ = apis(None)
    with pytest.raises((urllib3.exceptions.HTTPError, ValueError)):
        read_json(batch.list_namespaced_job, "ml")
    assert len(script.paths) == kube_client.READ_RETRIES + 1


def test_a_refused_connection_fails_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    use_kubeconfig(f"http://127.0.0.1:{port}", tmp_path / "config", monkeypatch)
    batch, _ = apis(None)
    began = time.monotonic()
    with pytest.raises(urllib3.exceptions.MaxRetryError) as raised:
        read_json(batch.list_namespaced_job, "ml")
    assert time.monotonic() - began < 2.0  # it was 5 retries with backoff: seconds per call
    said = api_error(raised.value, "listing Jobs in ml").message
    assert said.startswith("listing Jobs in ml: the Kubernetes API did not answer (")
    assert "Connection refused" in said and "  " not in said


def test_an_error_answer_is_said_with_its_status() -> None:
    from kubernetes.client.exceptions import ApiException

    said = api_error(ApiException(status=404, reason="Not Found"), "reading run x")
    assert said.message == "reading run x: the Kubernetes API answered 404 Not Found"
    forbidden = api_error(ApiException(status=403, reason="Forbidden"), "listing pods")
    assert forbidden.message == "listing pods: forbidden (Forbidden)" and "runner rbac" in (
        forbidden.hint or ""
    )
