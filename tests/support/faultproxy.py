"""A fault-injecting HTTPS proxy in front of the real kube-apiserver, for tests of what the runner survives.

    with FaultProxy(kubeconfig, control_plane.pki, tmp_path / "proxy") as proxy:
        proxy.add(Rule("POST", r"/jobs$", times=2, status=429, retry_after=1))
        proxy.add(Rule("GET", r"/log\\?.*follow=true", times=3, cut_seconds=2))
        ... the runner under test with KUBECONFIG=proxy.kubeconfig ...

It listens on 127.0.0.1 (a free port) with a certificate signed by the cluster's CA and forwards each
request to the API server of the kubeconfig's current context with its client certificate, streaming
the responses (watches and log follows are long chunked responses).

Rules are tried in the order added; the first that matches a request (its method, and a regex searched
in its path and query) and has uses left applies to it, and may, in this order: wait `delay` seconds;
answer `status` (a Kubernetes Status, with Retry-After when given) instead of the API server, or with
`forward` after the API server acted (a create happened, its answer is lost); with `expire`, answer a
watch with the ERROR event (410) of a version too old; or drop the connection after `cut_bytes` of
the response body or `cut_seconds` of it. `requests` records every request and the status it got.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import yaml

from tests.support.tls import issue, load_authority

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
REASONS = {410: "Expired", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable"}


@dataclass
class Rule:
    method: str  # GET, POST, ...; "*" for any
    path: str  # a regex searched in the request's path and query
    times: int | None = 1  # how many matching requests it applies to; None: every one
    status: int | None = None
    retry_after: float | None = None
    forward: bool = False
    delay: float = 0.0
    cut_bytes: int | None = None
    cut_seconds: float | None = None
    expire: bool = False
    used: int = 0  # requests it applied to
    cuts: int = 0  # connections it dropped (a stream that ends first is not cut)

    def matches(self, method: str, path: str) -> bool:
        left = self.times is None or self.used < self.times
        return left and self.method in ("*", method) and re.search(self.path, path) is not None


class FaultProxy:
    def __init__(self, kubeconfig: Path, pki: Path, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.config: dict[str, Any] = yaml.safe_load(kubeconfig.read_text())
        self.rules: list[Rule] = []
        self.requests: list[tuple[str, str, int]] = []  # method, path and query, status sent
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.open: set[_Handler] = set()
        self._server = _Server(self, serving_context(pki, workdir))
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self.kubeconfig = self._write_kubeconfig(workdir)
        self.connect = self._upstream()
        self._thread = threading.Thread(target=self._server.serve_forever, name="faultproxy", daemon=True)

    def add(self, rule: Rule) -> Rule:
        with self.lock:
            self.rules.append(rule)
        return rule

    def take(self, method: str, path: str) -> Rule | None:
        """The rule for this request, its use counted."""
        with self.lock:
            rule = next((rule for rule in self.rules if rule.matches(method, path)), None)
            if rule is not None:
                rule.used += 1
            return rule

    def record(self, method: str, path: str, status: int) -> None:
        with self.lock:
            self.requests.append((method, path, status))

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop every open connection (streams included), and wait for their threads."""
        self.stopping.set()
        if self._thread.is_alive():
            self._server.shutdown()
        for handler in list(self.open):  # a copy: each removes itself as it ends
            handler.drop()
        self._server.server_close()  # joins the handler threads
        self._thread.join()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _upstream(self) -> Callable[[], http.client.HTTPSConnection]:
        """Connections to the current context's server, with its CA and client certificate (files)."""
        context = next(
            c["context"] for c in self.config["contexts"] if c["name"] == self.config["current-context"]
        )
        cluster = next(e["cluster"] for e in self.config["clusters"] if e["name"] == context["cluster"])
        user = next(e["user"] for e in self.config["users"] if e["name"] == context["user"])
        tls = ssl.create_default_context(cafile=cluster["certificate-authority"])
        tls.load_cert_chain(user["client-certificate"], user["client-key"])
        server = urlsplit(cluster["server"])
        return partial(http.client.HTTPSConnection, server.hostname or "", server.port or 443, context=tls)

    def _write_kubeconfig(self, workdir: Path) -> Path:
        """The kubeconfig, every cluster's server the proxy (the cluster CA still checks it)."""
        config = json.loads(json.dumps(self.config))
        for cluster in config["clusters"]:
            cluster["cluster"]["server"] = self.url
        path = workdir / "kubeconfig"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path


def serving_context(pki: Path, workdir: Path) -> ssl.SSLContext:
    """TLS for 127.0.0.1 with a fresh key and a certificate signed by the cluster's CA (pki/ca.crt, .key)."""
    authority = load_authority(pki / "ca.crt", pki / "ca.key")
    certificate, key = issue(authority, "faultproxy", ips=("127.0.0.1",))
    pem = workdir / "proxy.pem"  # key and certificate in one file
    pem.touch(mode=0o600)
    pem.write_bytes(key + certificate)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pem)
    return context


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close joins every handler thread: nothing is left running

    def __init__(self, proxy: FaultProxy, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.proxy = proxy
        self.context = context

    def finish_request(self, request: Any, client_address: Any) -> None:
        """The TLS handshake in the connection's own thread, not in the accepting one."""
        try:
            request.settimeout(10)
            tls = self.context.wrap_socket(request, server_side=True)
            tls.settimeout(None)
        except (OSError, ssl.SSLError):
            return
        with tls:
            _Handler(tls, client_address, self)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream: http.client.HTTPSConnection | None = None

    @property
    def proxy(self) -> FaultProxy:
        return cast(_Server, self.server).proxy

    def setup(self) -> None:
        super().setup()
        with self.proxy.lock:
            self.proxy.open.add(self)

    def finish(self) -> None:
        with self.proxy.lock:
            self.proxy.open.discard(self)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: what matters is in proxy.requests."""

    def drop(self) -> None:
        """Cut both sides at once, as a lost connection does (no TLS close, no last chunk)."""
        self.close_connection = True
        upstream = self.upstream.sock if self.upstream is not None else None
        for sock in (self.connection, upstream):
            with contextlib.suppress(OSError, TypeError):
                socket.socket.shutdown(cast(socket.socket, sock), socket.SHUT_RDWR)

    def cut(self, rule: Rule | None) -> None:
        with self.proxy.lock:
            cast(Rule, rule).cuts += 1
        self.drop()

    def do_GET(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        rule = self.proxy.take(self.command, self.path)
        if rule is not None and rule.delay:
            self.proxy.stopping.wait(rule.delay)
        if rule is not None and rule.status and not rule.forward:
            self._answer(rule)
            return
        self.upstream = self.proxy.connect()
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
            self.upstream.request(self.command, self.path, body=body or None, headers=headers)
            response = self.upstream.getresponse()
            if rule is not None and rule.status:  # the server acted; its answer is lost
                response.read()
                self._answer(rule)
            else:
                self._relay(response, rule)
        except (OSError, http.client.HTTPException):
            self.close_connection = True
        finally:
            self.upstream.close()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def _answer(self, rule: Rule) -> None:
        """A Kubernetes Status for rule.status; with expire, a watch whose one event says that."""
        code = rule.status or 500
        status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code}
        status |= {"reason": REASONS.get(code, "InternalError"), "message": f"injected by faultproxy: {code}"}
        body = json.dumps({"type": "ERROR", "object": status} if rule.expire else status).encode() + b"\n"
        self.send_response_only(200 if rule.expire else code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if rule.retry_after is not None:
            self.send_header("Retry-After", f"{rule.retry_after:g}")
        self.end_headers()
        self.wfile.write(body)
        self.proxy.record(self.command, self.path, 200 if rule.expire else code)

    def _relay(self, response: http.client.HTTPResponse, rule: Rule | None) -> None:
        """The upstream answer as it comes, re-chunked when it has no length, cut when the rule says."""
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        chunked = response.getheader("Content-Length") is None and response.status not in (204, 304)
        chunked = chunked and self.command != "HEAD"
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.proxy.record(self.command, self.path, response.status)
        budget = rule.cut_bytes if rule is not None else None
        timer = threading.Timer(rule.cut_seconds, self.cut, (rule,)) if rule and rule.cut_seconds else None
        if timer is not None:
            timer.start()
        try:
            while data := response.read1(64 * 1024):
                if budget is not None and len(data) >= budget:
                    self._send(data[:budget], chunked)
                    return self.cut(rule)
                budget = None if budget is None else budget - len(data)
                self._send(data, chunked)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        finally:
            if timer is not None:
                timer.cancel()

    def _send(self, data: bytes, chunked: bool) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
