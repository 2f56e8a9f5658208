"""The client as runner uses it, against a small local HTTP server: 429 and 5xx answers are retried, an
answer cut mid-body is read again, and a refused connection is said at once rather than after the backoff
of every retry."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import urllib3
import yaml

from runner.backends.kubernetes import client as kube_client
from runner.backends.kubernetes.client import (
    JOBS_PATH,
    TABLE,
    api_error,
    apis,
    get_json,
    list_names,
    list_pages,
    read_json,
)

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


def serve(script: Script) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            script.paths.append(self.path)
            script.accepts.append(self.headers.get("Accept", ""))
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


def test_names_come_from_the_servers_table_page_by_page(script: Script) -> None:
    def table(names: list[str], token: str | None) -> bytes:
        columns = [{"name": "Status"}, {"name": "Name"}]  # found by name, wherever it stands
        rows = [{"cells": ["Complete", name]} for name in names]
        meta = {"continue": token} if token else {}
        return json.dumps(
            {"kind": "Table", "metadata": meta, "columnDefinitions": columns, "rows": rows}
        ).encode()

    script.answers += [(200, table(["a", "b"], "next"), False), (200, table(["c"], None), False)]
    assert list(list_names(None, JOBS_PATH, "ml", "m=r")) == ["a", "b", "c"]
    assert script.paths == [
        "/apis/batch/v1/namespaces/ml/jobs?labelSelector=m%3Dr&limit=500&includeObject=None",
        "/apis/batch/v1/namespaces/ml/jobs?labelSelector=m%3Dr&limit=500&includeObject=None&continue=next",
    ]
    assert script.accepts == [TABLE] * 2


def test_names_from_a_server_without_tables(script: Script) -> None:
    script.answers += [(200, json.dumps(LISTING).encode(), False)]  # a plain list: its items' names
    assert list(list_names(None, JOBS_PATH, "ml", "")) == ["a"]


def test_a_list_is_read_page_by_page(script: Script) -> None:
    first = {**LISTING, "metadata": {"continue": "next/page"}}
    second = {**LISTING, "items": [{"metadata": {"name": "b"}}]}
    script.answers += [(200, json.dumps(first).encode(), False), (200, json.dumps(second).encode(), False)]
    assert [job["metadata"]["name"] for job in list_pages(None, JOBS_PATH, "ml", "")] == ["a", "b"]
    assert script.paths[1].endswith("&limit=500&continue=next/page")
    assert script.accepts == ["application/json"] * 2


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
