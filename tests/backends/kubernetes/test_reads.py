"""Reads straight through urllib3 (runner.backends.kubernetes.reads) against a local TLS server: the
kubeconfig's CA, client certificate, token, token file and server name are used as kubectl uses them,
an unverified server is refused, and a kubeconfig that needs the client (an exec plugin) still gets it."""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner.backends.kubernetes import client as kube_client
from runner.backends.kubernetes.client import JOBS_PATH, direct_reads, get_json
from tests.support.apiserver.fixtures import Kube, kube  # noqa: F401  (fixture)
from tests.support.tls import Authority, issue, new_authority

LISTING = {
    "kind": "JobList",
    "apiVersion": "batch/v1",
    "metadata": {},
    "items": [{"metadata": {"name": "a"}}],
}


@dataclass
class Server:
    url: str
    authority: Authority
    directory: Path
    seen: list[dict[str, Any]] = field(default_factory=list)  # per request: path, token, client

    def client(self, name: str) -> tuple[bytes, bytes]:
        """A client certificate and key this server's CA signed, for user name."""
        return issue(self.authority, name, client=True)

    @property
    def trusted(self) -> dict[str, str]:
        """A cluster's entry for trusting this server: its CA, inline."""
        return {"certificate-authority-data": inline(self.authority.pem)}

    def kubeconfig(self, user: dict[str, Any], **cluster: Any) -> Path:
        path = self.directory / "kubeconfig"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": self.url, **cluster}}],
            "users": [{"name": "u", "user": user}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "ml"}}],
            "current-context": "c",
        }
        path.write_text(yaml.safe_dump(config))
        return path


def inline(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    authority = new_authority()
    certificate, key = issue(authority, "kube", ips=("127.0.0.1",), names=("kube.test",))
    (tmp_path / "server.pem").write_bytes(key + certificate)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(tmp_path / "server.pem")
    tls.load_verify_locations(cadata=authority.pem.decode())
    tls.verify_mode = ssl.CERT_OPTIONAL  # a client certificate is asked for, not required
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            peer = self.connection.getpeercert()
            subject = dict(part[0] for part in (peer or {}).get("subject", ()))
            seen.append(
                {
                    "path": self.path,
                    "authorization": self.headers.get("Authorization"),
                    "client": subject.get("commonName"),
                }
            )
            body = json.dumps(LISTING).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(kube_client, "_READS", {})
    monkeypatch.setattr(kube_client, "_CLIENTS", {})
    monkeypatch.setattr(kube_client, "API_RETRIES", 0)  # a refused handshake is said at once
    yield Server(f"https://127.0.0.1:{httpd.server_address[1]}", authority, tmp_path, seen)
    httpd.shutdown()
    httpd.server_close()


def read(server: Server, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    return get_json(None, JOBS_PATH, "ml", [("labelSelector", "runner.dev/run in (a,b)")])


def test_inline_ca_and_client_certificate(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    certificate, key = server.client("alice")
    config = server.kubeconfig(
        {"client-certificate-data": inline(certificate), "client-key-data": inline(key)},
        **server.trusted,
    )
    assert read(server, config, monkeypatch) == LISTING
    assert direct_reads(None) is not None  # not the client's
    assert server.seen == [
        {
            "path": "/apis/batch/v1/namespaces/ml/jobs?labelSelector=runner.dev/run%20in%20%28a%2Cb%29",
            "authorization": None,
            "client": "alice",
        }
    ]


def test_files_relative_to_the_kubeconfig_and_a_token(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    certificate, key = server.client("bob")
    (server.directory / "ca.crt").write_bytes(server.authority.pem)
    (server.directory / "bob.crt").write_bytes(certificate)
    (server.directory / "bob.key").write_bytes(key)
    config = server.kubeconfig(
        {"client-certificate": "bob.crt", "client-key": "bob.key", "token": "t0k3n"},
        **{"certificate-authority": "ca.crt"},
    )
    assert read(server, config, monkeypatch) == LISTING
    assert [(seen["client"], seen["authorization"]) for seen in server.seen] == [("bob", "Bearer t0k3n")]


def test_a_token_file_is_read_again_for_each_request(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    (server.directory / "token").write_text("first\n")
    config = server.kubeconfig({"tokenFile": "token"}, **server.trusted)
    read(server, config, monkeypatch)
    (server.directory / "token").write_text("rotated\n")
    read(server, config, monkeypatch)
    assert [seen["authorization"] for seen in server.seen] == ["Bearer first", "Bearer rotated"]


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_the_server_is_verified(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the CA the server's certificate is not trusted; with another server name it does not
    match; with insecure-skip-tls-verify it is not checked at all, as kubectl does."""
    for cluster in [{}, {**server.trusted, "tls-server-name": "other.test"}]:
        with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
            read(server, server.kubeconfig({"token": "t"}, **cluster), monkeypatch)
    assert server.seen == []
    named = server.kubeconfig({"token": "t"}, **server.trusted, **{"tls-server-name": "kube.test"})
    read(server, named, monkeypatch)
    read(server, server.kubeconfig({"token": "t"}, **{"insecure-skip-tls-verify": True}), monkeypatch)
    assert len(server.seen) == 2


def reading_in_a_fresh_process(config: Path) -> dict[str, Any]:
    """What get_json read in a process of its own, and whether that imported the Kubernetes client."""
    code = textwrap.dedent(
        """
        import json, sys
        from runner.backends.kubernetes.client import JOBS_PATH, get_json
        listing = get_json(None, JOBS_PATH, "ml")
        print(json.dumps({"listing": listing, "client": "kubernetes" in sys.modules}))
        """
    )
    env = {"KUBECONFIG": str(config), "PATH": "/usr/bin:/bin", "HOME": str(config.parent)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def test_static_credentials_read_without_importing_the_client(server: Server) -> None:
    config = server.kubeconfig({"token": "t"}, **server.trusted)
    assert reading_in_a_fresh_process(config) == {"listing": LISTING, "client": False}
    assert [seen["authorization"] for seen in server.seen] == ["Bearer t"]


def test_an_exec_plugin_is_the_clients_to_run(server: Server) -> None:
    plugin = server.directory / "credentials"
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "kind": "ExecCredential",
        "status": {"token": "from-the-plugin"},
    }
    plugin.write_text(f"#!/bin/sh\necho '{json.dumps(credential)}'\n")
    plugin.chmod(0o755)
    exec_user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": str(plugin)}}
    config = server.kubeconfig(exec_user, **server.trusted)
    assert reading_in_a_fresh_process(config) == {"listing": LISTING, "client": True}
    assert [seen["authorization"] for seen in server.seen] == ["Bearer from-the-plugin"]


def test_listing_and_reading_cluster_runs_imports_no_kubernetes_client(
    kube: Kube,  # noqa: F811
    tmp_path: Path,
) -> None:
    """`runner list --cluster` from a fresh home (adopting a run another machine submitted) and `runner
    status` of that run, against the fake API server with a token kubeconfig: what they read is right,
    and the interpreter's own import log names no module of the Kubernetes client."""
    labels = {"app.kubernetes.io/managed-by": "runner", "runner.dev/run": "elsewhere-abc123"}
    kube.server.create(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "elsewhere-abc123", "labels": {**labels, "runner.dev/job": "elsewhere"}},
            "spec": {
                "backoffLimit": 2,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "job", "image": "registry/elsewhere:1"}],
                    }
                },
            },
        }
    )
    env = {**os.environ, "RUNNER_HOME": str(tmp_path / "fresh-home"), "KUBECONFIG": str(kube.kubeconfig)}
    for command, expected in [
        (["list", "--cluster", "-o", "name"], "elsewhere-abc123\n"),
        (["status", "elsewhere-abc123", "-o", "json"], '"state": "pending"'),  # read again: not finished
    ]:
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "runner.cli.main", *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert expected in done.stdout
        imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line]
        assert "runner.backends.kubernetes.reads" in imported
        assert [name for name in imported if name.split(".")[0] == "kubernetes"] == []
