"""A fake Kubernetes API server on loopback, for driving the real `kubernetes` client and real kubectl.

    server = FakeKubeServer().start()          # http://127.0.0.1:<free port>
    server.create({"apiVersion": "batch/v1", "kind": "Job", ...})
    server.set_pod_phase("mnist-x7k2p", "Running")
    server.append_log("mnist-x7k2p", "epoch 1/5\n")
    server.fail_next(2, status=500, path="/jobs")
    server.stop()

It serves discovery, namespaced and cluster-scoped CRUD, list (selectors, pagination), watch (bookmarks,
410 Gone past the retained history), server-side tables, pods/log (follow), the status and binding
subresources, deletion with propagation policies and a garbage collector. Nothing schedules or runs pods:
tests (and a later simulator) set phases, container states and logs through this handle. See `store.py`
for the state, `rules.py` for defaulting and validation, `tables.py` for `kubectl get` columns.

Standard library (http.server, a thread per connection) and PyYAML; JSON in and out, no protobuf.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import logging
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml

from tests.support.apiserver import resources, tables
from tests.support.apiserver.objects import event_body
from tests.support.apiserver.resources import ResourceType
from tests.support.apiserver.selectors import Matcher, field_matcher, label_matcher, selector_dict_matcher
from tests.support.apiserver.store import (
    ApiError,
    Clock,
    LogLine,
    Obj,
    Store,
    WatchEvent,
    bad_request,
    gone,
    micro_timestamp,
    parse_timestamp,
    timestamp,
    utcnow,
)

log = logging.getLogger(__name__)

PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}
JOB_DELETE_WARNING = (
    '299 - "child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to '
    'remove them or set propagationPolicy=Orphan to suppress this warning"'
)


def method_not_allowed() -> ApiError:
    return ApiError(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
    )


def truthy(value: str | None) -> bool:
    return (value or "").lower() in {"true", "1"}


@dataclass
class Fault:
    """Answer matching requests with an error (or cut them, or slow them) while count lasts."""

    status: int | None = 500
    count: int = 1
    method: str | None = None
    path: str | None = None  # a regular expression searched in the request path
    retry_after: int | None = None
    delay: float = 0.0
    reset: bool = False  # close the connection without answering
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.count <= 0:
            return False
        if self.method and self.method.upper() != method:
            return False
        return not self.path or re.search(self.path, path) is not None


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any = None


REASONS = {
    429: ("TooManyRequests", "the server has received too many requests and has asked us to try again later"),
    500: ("InternalError", "Internal error occurred: injected fault"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: ("Timeout", "the server was unable to return a response in the time allotted"),
}


def fault_error(fault: Fault) -> ApiError:
    assert fault.status is not None
    reason, message = REASONS.get(fault.status, ("InternalError", f"injected fault ({fault.status})"))
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
    details = {"retryAfterSeconds": fault.retry_after} if fault.retry_after is not None else None
    return ApiError(fault.status, reason, message, details, headers)


@dataclass
class _Negotiated:
    kind: str = ""  # "", Table, PartialObjectMetadata, PartialObjectMetadataList
    version: str = "v1"


def negotiate(accept: str | None) -> _Negotiated:
    for part in (accept or "").split(","):
        media, *raw = (p.strip() for p in part.split(";"))
        if media not in {"application/json", "*/*", "application/*"}:
            continue
        params = dict(p.split("=", 1) for p in raw if "=" in p)
        wanted = params.get("as")
        if wanted is None:
            return _Negotiated()
        supported = {"Table", "PartialObjectMetadata", "PartialObjectMetadataList"}
        if wanted in supported and params.get("g") == "meta.k8s.io" and params.get("v") in {"v1", "v1beta1"}:
            return _Negotiated(wanted, params["v"])
    return _Negotiated()


@dataclass
class _Route:
    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    api: FakeKubeServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up mid-answer is routine here; anything else is logged."""
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer
    server_version = "fake-kube-apiserver"

    # --- plumbing ----------------------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without this, Nagle + delayed ACK cost 40 ms a request
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.api._track(self.connection, opened=True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.api._track(self.connection, opened=False)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _decode(self, raw: bytes) -> Any:
        if not raw:
            return None
        content_type = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        if "protobuf" in content_type or "cbor" in content_type:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format: {content_type} (the fake API server "
                "reads only JSON and YAML; typed kubectl commands like `create configmap` send protobuf)",
            )
        try:
            if "yaml" in content_type:
                return yaml.safe_load(raw)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise bad_request(f"the body of the request was in an unknown format: {exc}") from exc

    def _send_json(self, code: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_text(self, code: int, text: str) -> None:
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _start_stream(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _cut(self) -> None:
        """Drop the connection mid-response, as a crashed server or a proxy timeout would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    # --- dispatch ----------------------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        api = self.server.api
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        try:
            raw = self._read_body()
            body = self._decode(raw)
        except ApiError as refused:
            self._send_json(refused.code, refused.status(), refused.headers)
            return
        headers = {
            k: v for k, v in self.headers.items() if k.lower() in {"accept", "content-type", "user-agent"}
        }
        request = Request(method, path, query, headers, body)
        api.requests.append(request)
        started = time.perf_counter()
        try:
            self._answer(api, request)
        finally:
            api.timings.append((request, time.perf_counter() - started))

    def _answer(self, api: FakeKubeServer, request: Request) -> None:
        method, path, query, body = request.method, request.path, request.query, request.body
        if api.latency:
            time.sleep(api.latency)
        fault = api._take_fault(method, path)
        if fault is not None:
            fault.hits += 1
            if fault.delay:
                time.sleep(fault.delay)
            if fault.reset:
                self._cut()
                return
            if fault.status is not None:
                error = fault_error(fault)
                self._send_json(error.code, error.status(), error.headers)
                return
        try:
            self._route(method, path, query, body)
        except ApiError as error:
            self._send_json(error.code, error.status(), error.headers)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # a bug in the fake must show up as a 500, and in the log
            log.exception("fake API server failed on %s %s", method, self.path)
            self._send_json(500, ApiError(500, "InternalError", f"fake API server bug: {exc!r}").status())

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> None:
        api = self.server.api
        if path == "/version":
            self._send_json(200, resources.SERVER_VERSION)
        elif path in {"/healthz", "/livez", "/readyz"}:
            self._send_text(200, "ok")
        elif path == "/api":
            self._send_json(200, resources.api_versions(api.address))
        elif path == "/apis":
            self._send_json(200, resources.api_group_list())
        elif path == "/openapi/v3":
            self._send_json(200, resources.openapi_root())
        elif path.startswith("/openapi/v3/"):
            rest = path.removeprefix("/openapi/v3/").split("/")
            group, version = (
                ("", rest[1]) if rest[0] == "api" else (rest[1], rest[2] if len(rest) > 2 else "")
            )
            document = resources.openapi_document(group, version)
            if document is None:
                self._send_text(404, "404 page not found\n")
            else:
                self._send_json(200, document)
        else:
            self._route_api(method, path, query, body)

    def _parse_route(self, path: str) -> _Route | Obj | None:
        parts = [unquote(p) for p in path.split("/") if p]
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 2:
            if len(parts) == 2:
                return resources.api_group(parts[1]) if parts[1] in resources.group_versions() else None
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        if not rest:
            return resources.resource_list(group, version)
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            candidate = resources.find(group, version, rest[2])
            if candidate is not None and candidate.namespaced:
                namespace, rest = rest[1], rest[2:]
        rt = resources.find(group, version, rest[0])
        if rt is None or len(rest) > 3 or (rt.namespaced and namespace is None and len(rest) > 1):
            return None
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        if subresource is not None and subresource not in rt.subresources:
            return None
        return _Route(rt, namespace, name, subresource)

    def _route_api(self, method: str, path: str, query: dict[str, str], body: Any) -> None:
        route = self._parse_route(path)
        if route is None:
            self._send_text(404, "404 page not found\n")
            return
        if not isinstance(route, _Route):
            if method != "GET":
                raise method_not_allowed()
            self._send_json(200, route)
            return
        rt, name, sub = route.rt, route.name, route.subresource
        namespace = route.namespace or ""
        dry_run = query.get("dryRun") == "All"
        store = self.server.api.store
        if name is None:
            if method == "GET" and truthy(query.get("watch")):
                self._watch(route, query)
            elif method == "GET":
                self._list(route, query)
            elif method == "POST" and (route.namespace is not None or not rt.namespaced):
                created = store.create(rt, namespace, body, dry_run=dry_run)
                self._send_json(201, created)
            elif method == "DELETE":
                self._delete_collection(route, query, body)
            else:
                raise method_not_allowed()
            return
        if sub == "log" and method == "GET":
            self._log(namespace, name, query)
        elif sub == "binding" and method == "POST":
            self._bind(namespace, name, body)
        elif method == "GET" and sub in {None, "status"}:
            obj = store.get(rt, namespace, name)
            self._send_object(rt, obj, query)
        elif method == "PUT" and sub in {None, "status"}:
            self._send_json(200, store.update(rt, namespace, name, body, subresource=sub, dry_run=dry_run))
        elif method == "PATCH" and sub in {None, "status"}:
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            patch_type = PATCH_TYPES.get(content_type)
            if patch_type is None:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types include: "
                    f"{', '.join(PATCH_TYPES)}",
                )
            existed = store.find(rt, namespace, name) is not None
            patched = store.patch(
                rt,
                namespace,
                name,
                patch_type,
                body,
                subresource=sub,
                dry_run=dry_run,
                field_manager=query.get("fieldManager"),
            )
            self._send_json(200 if existed else 201, patched)
        elif method == "DELETE" and sub is None:
            self._delete(rt, namespace, name, query, body)
        else:
            raise method_not_allowed()

    # --- reads -------------------------------------------------------------------------------------------

    def _send_object(self, rt: ResourceType, obj: Obj, query: dict[str, str]) -> None:
        wanted = negotiate(self.headers.get("Accept"))
        if wanted.kind == "Table":
            now = self.server.api.store.clock()
            include = query.get("includeObject", "Metadata")
            self._send_json(200, tables.table(rt, [obj], now, version=wanted.version, include_object=include))
        elif wanted.kind.startswith("PartialObjectMetadata"):
            self._send_json(200, tables.partial_metadata(obj, wanted.version))
        else:
            self._send_json(200, obj)

    def _matcher(self, rt: ResourceType, query: dict[str, str]) -> Matcher:
        try:
            labels = label_matcher(query.get("labelSelector"))
            fields = field_matcher(query.get("fieldSelector"), rt.field_labels)
        except ValueError as exc:
            raise bad_request(str(exc)) from exc
        return lambda obj: labels(obj) and fields(obj)

    def _list(self, route: _Route, query: dict[str, str]) -> None:
        api = self.server.api
        rt = route.rt
        match = self._matcher(rt, query)
        limit = int(query.get("limit") or 0)
        token = query.get("continue")
        after: tuple[str, str] | None = None
        token_rv = 0
        if token:
            try:
                state = json.loads(base64.urlsafe_b64decode(token.encode()))
                start_key, token_rv = state["start"], int(state["rv"])
                after = (str(start_key[0]), str(start_key[1]))
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                raise bad_request(f"continue key is not valid: {exc}") from exc
        with api.store.lock:  # only the page is copied (store.list_page)
            if token and token_rv < api.store.compacted_rv:
                raise gone(
                    "The provided continue parameter is too old to display a consistent list result. You can "
                    "start a new list without the continue parameter, or use the continue token in this "
                    "response to retrieve the remainder of the results. Continuing with the provided token "
                    "results in an inconsistent list - objects that were created, modified, or deleted "
                    "between the time the first chunk was returned and now may show up in the list."
                )
            items, remaining = api.store.list_page(rt, route.namespace, match, after=after, limit=limit)
            list_rv = api.store.resource_version
        list_meta: Obj = {"resourceVersion": str(list_rv)}
        if remaining:
            last = _sort_key(items[-1])
            state = {"rv": list_rv, "start": list(last)}
            list_meta["continue"] = base64.urlsafe_b64encode(json.dumps(state).encode()).decode()
            list_meta["remainingItemCount"] = remaining
        wanted = negotiate(self.headers.get("Accept"))
        if wanted.kind == "Table":
            now = api.store.clock()
            include = query.get("includeObject", "Metadata")
            body = tables.table(
                rt, items, now, version=wanted.version, include_object=include, list_meta=list_meta
            )
        elif wanted.kind.startswith("PartialObjectMetadata"):
            body = {
                "kind": "PartialObjectMetadataList",
                "apiVersion": f"meta.k8s.io/{wanted.version}",
                "metadata": list_meta,
                "items": [tables.partial_metadata(o, wanted.version) for o in items],
            }
        else:
            stripped = [{k: v for k, v in o.items() if k not in {"kind", "apiVersion"}} for o in items]
            body = {
                "kind": rt.list_kind,
                "apiVersion": rt.api_version,
                "metadata": list_meta,
                "items": stripped,
            }
        self._send_json(200, body)

    # --- watch -------------------------------------------------------------------------------------------

    def _watch(self, route: _Route, query: dict[str, str]) -> None:
        api = self.server.api
        store, rt = api.store, route.rt
        match = self._matcher(rt, query)
        wanted = negotiate(self.headers.get("Accept"))
        timeout = float(query.get("timeoutSeconds") or 0)
        deadline = time.monotonic() + timeout if timeout > 0 else None
        bookmarks = truthy(query.get("allowWatchBookmarks"))
        send_initial = truthy(query.get("sendInitialEvents"))
        raw_rv = query.get("resourceVersion", "")
        try:
            start_rv = int(raw_rv) if raw_rv else 0
        except ValueError as exc:
            raise bad_request(f'resourceVersion: Invalid value: "{raw_rv}": must be an integer') from exc
        if send_initial and not bookmarks:
            raise ApiError(
                422,
                "Invalid",
                "allowWatchBookmarks: Required value: sendInitialEvents requires allowWatchBookmarks",
            )
        initial: list[Obj] = []
        expired: ApiError | None = None
        with store.lock:
            epoch = store.watch_epoch
            cursor = store.resource_version
            if send_initial or start_rv == 0:
                initial = store.list_objects(rt, route.namespace, match)
            elif start_rv < store.compacted_rv:
                expired = gone(f"too old resource version: {start_rv} ({store.compacted_rv + 1})")
            else:
                cursor = start_rv

        def frame(kind: str, obj: Obj) -> bytes:
            if wanted.kind == "Table" and kind not in {"ERROR", "BOOKMARK"}:
                include = query.get("includeObject", "Metadata")
                obj = tables.table(rt, [obj], store.clock(), version=wanted.version, include_object=include)
            return json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"

        def bookmark(rv: int, initial_end: bool = False) -> bytes:
            meta: Obj = {"resourceVersion": str(rv)}
            if initial_end:
                meta["annotations"] = {"k8s.io/initial-events-end": "true"}
            return frame("BOOKMARK", {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta})

        api._stream_opened()
        try:
            self._start_stream("application/json")
            if expired is not None:
                self._chunk(frame("ERROR", expired.status()))
                self._end_stream()
                return
            for obj in initial:
                self._chunk(frame("ADDED", obj))
            if send_initial:
                self._chunk(bookmark(cursor, initial_end=True))
            next_bookmark = time.monotonic() + api.bookmark_interval
            while True:
                events: list[WatchEvent] = []
                error: ApiError | None = None
                with store.lock:
                    while (
                        not store.closed
                        and epoch == store.watch_epoch
                        and store.resource_version == cursor
                        and (deadline is None or time.monotonic() < deadline)
                        and not (bookmarks and time.monotonic() >= next_bookmark)
                    ):
                        store.wait(0.25)
                    stopping = store.closed or epoch != store.watch_epoch
                    if stopping and store.abrupt_drop and not store.closed:
                        self._cut()
                        return
                    try:  # a clean stop still delivers what was committed before it
                        events = store.history_since(cursor)
                    except ApiError as exc:
                        error = exc
                    cursor = store.resource_version
                if error is not None:
                    self._chunk(frame("ERROR", error.status()))
                    break
                for event in events:
                    translated = _translate(event, rt, route.namespace, match)
                    if translated is not None:
                        self._chunk(frame(*translated))
                if stopping:
                    break
                if bookmarks and time.monotonic() >= next_bookmark:
                    self._chunk(bookmark(cursor))
                    next_bookmark = time.monotonic() + api.bookmark_interval
                if deadline is not None and time.monotonic() >= deadline:
                    break
            self._end_stream()
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True
        finally:
            api._stream_closed()

    # --- pods/log and pods/binding -----------------------------------------------------------------------

    def _log(self, namespace: str, name: str, query: dict[str, str]) -> None:
        api = self.server.api
        store = api.store
        pods = resources.lookup("pods")
        pod = store.get(pods, namespace, name)
        spec = pod.get("spec") or {}
        main = [c["name"] for c in spec.get("containers") or []]
        init = [c["name"] for c in spec.get("initContainers") or []]
        container = query.get("container")
        if not container:
            default = (pod["metadata"].get("annotations") or {}).get(
                "kubectl.kubernetes.io/default-container"
            )
            if default:
                container = default
            elif len(main) == 1:
                container = main[0]
            else:
                extra = f" or one of the init containers: [{' '.join(init)}]" if init else ""
                choices = f"[{' '.join(main)}]{extra}"
                raise bad_request(
                    f"a container name must be specified for pod {name}, choose one of: {choices}"
                )
        if container not in main + init:
            raise bad_request(f"container {container} is not valid for pod {name}")
        if truthy(query.get("previous")):
            raise bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
        follow = truthy(query.get("follow"))
        if not spec.get("nodeName"):  # not scheduled: the real server answers an empty log
            self._start_stream("text/plain")
            self._end_stream()
            return
        state = _container_state(pod, container)
        if state is None or "waiting" in state:
            reason = ((state or {}).get("waiting") or {}).get("reason") or "ContainerCreating"
            raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: {reason}')
        with store.lock:  # the snapshot and the follow offset must agree
            everything = store.log_lines(namespace, name, container)
            offset = sum(len(line.text) for line in everything)
        lines = everything
        if since_time := query.get("sinceTime"):
            cutoff = parse_timestamp(since_time)
            lines = [line for line in lines if line.time >= cutoff]
        if since_seconds := query.get("sinceSeconds"):
            cutoff = store.clock() - timedelta(seconds=int(since_seconds))
            lines = [line for line in lines if line.time >= cutoff]
        if query.get("tailLines") not in (None, ""):
            tail = int(query["tailLines"])
            lines = lines[len(lines) - tail :] if tail > 0 else []
        stamps = truthy(query.get("timestamps"))
        limit = int(query.get("limitBytes") or 0)
        sent = 0

        def render(batch: list[LogLine], skip: int = 0) -> bytes:
            """The text of batch from character skip on; a timestamp starts each line when asked for."""
            pieces, start = [], 0
            for line in batch:
                end = start + len(line.text)
                if end > skip:
                    text = line.text[max(skip - start, 0) :]
                    fresh_line = start >= skip
                    pieces.append(f"{micro_timestamp(line.time)} {text}" if stamps and fresh_line else text)
                start = end
            return "".join(pieces).encode()

        def send(data: bytes) -> bool:
            nonlocal sent
            if limit:
                data = data[: max(0, limit - sent)]
            self._chunk(data)
            sent += len(data)
            return not limit or sent < limit

        api._stream_opened()
        try:
            self._start_stream("text/plain")
            if not send(render(lines)) or not follow:
                self._end_stream()
                return
            with store.lock:
                epoch = store.watch_epoch
            while True:
                with store.lock:
                    current = store.find(pods, namespace, name)
                    everything = store.log_lines(namespace, name, container)
                    total = sum(len(line.text) for line in everything)
                    if total < offset:  # the log was replaced (set_log): start over
                        offset = 0
                    fresh = render(everything, offset) if total > offset else b""
                    offset = total
                    finished = current is None or _finished(current, container)
                    ended = store.closed or epoch != store.watch_epoch
                    if not fresh and not finished and not ended:
                        store.wait(0.25)
                        continue
                if fresh and not send(fresh):
                    break
                if ended and store.abrupt_drop and not store.closed:
                    self._cut()
                    return
                if finished or ended:
                    break
            self._end_stream()
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True
        finally:
            api._stream_closed()

    def _bind(self, namespace: str, name: str, body: Any) -> None:
        target = (body or {}).get("target") or {}
        node = target.get("name")
        if not node:
            raise ApiError(422, "Invalid", "target.name: Required value")
        api = self.server.api
        pods = resources.lookup("pods")
        with api.store.lock:
            pod = api.store.get(pods, namespace, name)
            if (pod.get("spec") or {}).get("nodeName"):
                bound = pod["spec"]["nodeName"]
                why = f'pod {name} is already assigned to node "{bound}"'
                raise ApiError(
                    409, "Conflict", f'Operation cannot be fulfilled on pods/binding "{name}": {why}'
                )
            api._write_pod(pod, node=node, scheduled=True)
        self._send_json(
            201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
        )

    # --- deletes -----------------------------------------------------------------------------------------

    def _delete_options(self, query: dict[str, str], body: Any) -> tuple[str | None, Obj | None]:
        options = body if isinstance(body, dict) else {}
        propagation = options.get("propagationPolicy") or query.get("propagationPolicy")
        orphan = options.get("orphanDependents")
        if orphan is None and "orphanDependents" in query:
            orphan = truthy(query["orphanDependents"])
        if propagation is None and orphan is not None:
            propagation = "Orphan" if orphan else "Background"
        return propagation, options.get("preconditions")

    def _delete(self, rt: ResourceType, namespace: str, name: str, query: dict[str, str], body: Any) -> None:
        propagation, preconditions = self._delete_options(query, body)
        dry_run = query.get("dryRun") == "All" or (isinstance(body, dict) and body.get("dryRun") == ["All"])
        obj, gone_now = self.server.api.store.delete(
            rt, namespace, name, propagation=propagation, preconditions=preconditions, dry_run=dry_run
        )
        headers = {"Warning": JOB_DELETE_WARNING} if rt.plural == "jobs" and propagation is None else {}
        self._send_json(200 if gone_now else 202, obj, headers)

    def _delete_collection(self, route: _Route, query: dict[str, str], body: Any) -> None:
        store, rt = self.server.api.store, route.rt
        propagation, _ = self._delete_options(query, body)
        match = self._matcher(rt, query)
        deleted = []
        with store.lock:
            for obj in store.list_objects(rt, route.namespace, match):
                meta = obj["metadata"]
                with contextlib.suppress(ApiError):
                    deleted.append(
                        store.delete(rt, meta.get("namespace", ""), meta["name"], propagation=propagation)[0]
                    )
            rv = store.resource_version
        items = [{k: v for k, v in o.items() if k not in {"kind", "apiVersion"}} for o in deleted]
        body_out = {
            "kind": rt.list_kind,
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": str(rv)},
            "items": items,
        }
        self._send_json(200, body_out)


def _sort_key(obj: Obj) -> tuple[str, str]:
    return (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])


def _translate(
    event: WatchEvent, rt: ResourceType, namespace: str | None, match: Matcher
) -> tuple[str, Obj] | None:
    """What a watcher of rt in namespace with a selector sees of an event: objects entering or leaving the
    selection arrive as ADDED and DELETED, as from the real server."""
    if event.rt != rt or (namespace is not None and event.namespace != namespace):
        return None
    now_in = match(event.obj)
    if event.type == "MODIFIED" and event.old is not None:
        was_in = match(event.old)
        if now_in and not was_in:
            return "ADDED", event.obj
        if was_in and not now_in:
            return "DELETED", event.obj
    return (event.type, event.obj) if now_in else None


def _container_state(pod: Obj, container: str) -> Obj | None:
    status = pod.get("status") or {}
    for entry in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
        if entry.get("name") == container:
            state: Obj = entry.get("state") or {}
            return state
    return None


def _finished(pod: Obj, container: str) -> bool:
    if (pod.get("status") or {}).get("phase") in {"Succeeded", "Failed"}:
        return True
    state = _container_state(pod, container) or {}
    return "terminated" in state


# --- the handle tests use ----------------------------------------------------------------------------------


class FakeKubeServer:
    """The fake API server and the test-side handle on its state (see the module docstring)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        clock: Clock = utcnow,
        history: int = 1000,
        bookmark_interval: float = 5.0,
        default_namespace: str = "default",
    ) -> None:
        self.store = Store(clock=clock, history=history)
        self.faults: list[Fault] = []
        self.requests: list[Request] = []
        """Every request received, in order (method, path, query, a few headers, decoded body)."""
        self.timings: list[tuple[Request, float]] = []
        """Every request answered, in order of completion, with the seconds the server took to answer it
        (from after its body was read to its last byte written; a watch or log follow counts its whole
        life). For figures like the p99 of mutating requests, against the Kubernetes API SLO."""
        self.latency = 0.0
        """Seconds every request waits before it is handled."""
        self.bookmark_interval = bookmark_interval
        self.default_namespace = default_namespace
        self._fault_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._connections_changed = threading.Condition()
        self._open_streams = 0
        self._streams_started = 0
        self._httpd = _HTTPServer((host, port), _Handler, bind_and_activate=True)
        self._httpd.api = self
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------------------

    @property
    def address(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{host!s}:{port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self) -> FakeKubeServer:
        self._thread = threading.Thread(target=self._serve, name="fake-kube-apiserver", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        self._httpd.serve_forever(poll_interval=0.05)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving: end watches and log follows, close every connection, wait for handler threads."""
        self.store.close()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout)
        self._httpd.server_close()
        with self._connections_changed:
            for connection in list(self._connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self._connections_changed.wait_for(lambda: not self._connections, timeout)

    def __enter__(self) -> FakeKubeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _track(self, connection: socket.socket, *, opened: bool) -> None:
        with self._connections_changed:
            if opened:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)
            self._connections_changed.notify_all()

    def _stream_opened(self) -> None:
        with self._connections_changed:
            self._open_streams += 1
            self._streams_started += 1
            self._connections_changed.notify_all()

    def _stream_closed(self) -> None:
        with self._connections_changed:
            self._open_streams -= 1
            self._connections_changed.notify_all()

    @property
    def open_streams(self) -> int:
        """Watches and log follows being served right now."""
        return self._open_streams

    @property
    def streams_started(self) -> int:
        """Watches and log follows started since the server started."""
        return self._streams_started

    def wait_for_streams(self, count: int = 1, timeout: float = 10.0, *, started: bool = False) -> None:
        """Block until count watches/log follows are open (started=True: have started in all), to act once
        a client listens. A stream counts once the server holds its starting point, so what a test writes
        after this returns reaches the client."""

        def enough() -> bool:
            return (self._streams_started if started else self._open_streams) >= count

        with self._connections_changed:
            if not self._connections_changed.wait_for(enough, timeout):
                raise AssertionError(
                    f"{self._open_streams} streams open ({self._streams_started} started) after {timeout}s, "
                    f"wanted {count}{' started' if started else ''}"
                )

    # --- faults ------------------------------------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        status: int | None = 500,
        *,
        method: str | None = None,
        path: str | None = None,
        retry_after: int | None = None,
        delay: float = 0.0,
        reset: bool = False,
    ) -> Fault:
        """Answer the next count requests matching method and path (a regex searched in the URL path) with
        status (and Retry-After), or cut them (reset=True), or only delay them (status=None, delay=seconds).
        The first matching fault with count left applies; `hits` counts the requests it answered."""
        fault = Fault(status, count, method, path, retry_after, delay, reset)
        with self._fault_lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._fault_lock:
            self.faults.clear()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._fault_lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.count -= 1
                    return fault
        return None

    def expire_history(self) -> None:
        self.store.expire_history()

    def drop_watches(self, *, abrupt: bool = False) -> None:
        self.store.drop_watches(abrupt=abrupt)

    # --- objects -----------------------------------------------------------------------------------------

    def _ns(self, rt: ResourceType, namespace: str | None) -> str:
        return (namespace or self.default_namespace) if rt.namespaced else ""

    def create(self, obj: Obj, namespace: str | None = None) -> Obj:
        """Create an object as a client would (defaults, validation, events); returns it as stored."""
        rt = resources.for_object(obj)
        return self.store.create(rt, self._ns(rt, namespace or obj.get("metadata", {}).get("namespace")), obj)

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj:
        rt = resources.lookup(kind)
        return self.store.get(rt, self._ns(rt, namespace), name)

    def find(self, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        rt = resources.lookup(kind)
        return self.store.find(rt, self._ns(rt, namespace), name)

    def list_objects(
        self, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> list[Obj]:
        """Objects of a kind, in one namespace (default: the default namespace) or all ("*")."""
        rt = resources.lookup(kind)
        scope = None if namespace == "*" or not rt.namespaced else self._ns(rt, namespace)
        return self.store.list_objects(rt, scope, label_matcher(label_selector))

    def update(self, obj: Obj, *, status: bool = False) -> Obj:
        rt = resources.for_object(obj)
        meta = obj["metadata"]
        return self.store.update(
            rt,
            self._ns(rt, meta.get("namespace")),
            meta["name"],
            obj,
            subresource="status" if status else None,
        )

    def patch_status(self, kind: str, name: str, status: Obj, namespace: str | None = None) -> Obj:
        """Merge-patch an object's status, as a controller would."""
        rt = resources.lookup(kind)
        return self.store.patch(
            rt, self._ns(rt, namespace), name, "merge", {"status": status}, subresource="status"
        )

    def delete(
        self, kind: str, name: str, namespace: str | None = None, propagation: str | None = None
    ) -> Obj:
        rt = resources.lookup(kind)
        return self.store.delete(rt, self._ns(rt, namespace), name, propagation=propagation)[0]

    # --- pods, the way a scheduler and a kubelet would change them ---------------------------------------

    def _write_pod(
        self,
        pod: Obj,
        *,
        node: str | None = None,
        scheduled: bool | None = None,
        unschedulable: str | None = None,
        phase: str | None = None,
        pod_reason: str | None = None,
        pod_message: str | None = None,
        **container: Any,
    ) -> Obj:
        """Store a changed pod directly (spec.nodeName too), as the scheduler and a kubelet would."""
        now = timestamp(self.store.clock())
        updated = copy.deepcopy(pod)
        status = updated.setdefault("status", {})
        conditions = {c["type"]: c for c in status.get("conditions") or []}

        def condition(kind: str, value: bool, reason: str | None = None, message: str | None = None) -> None:
            old = conditions.get(kind, {})
            state = "True" if value else "False"
            entry: Obj = {"type": kind, "status": state, "lastProbeTime": None}
            entry["lastTransitionTime"] = old["lastTransitionTime"] if old.get("status") == state else now
            if reason:
                entry["reason"] = reason
            if message:
                entry["message"] = message
            conditions[kind] = entry

        if node:
            updated["spec"]["nodeName"] = node
        if scheduled is not None:
            condition("PodScheduled", scheduled, None if scheduled else "Unschedulable", unschedulable)
        if phase is not None:
            status["phase"] = phase
            if phase != "Pending":
                status.setdefault("startTime", now)
                status.setdefault("hostIP", "10.0.0.1")
                status.setdefault("podIP", f"10.244.0.{secrets.randbelow(250) + 2}")
                status.setdefault("podIPs", [{"ip": status["podIP"]}])
                status.setdefault("hostIPs", [{"ip": status["hostIP"]}])
            running = phase == "Running"
            condition("Initialized", True)
            condition("ContainersReady", running, None if running else "ContainersNotReady")
            condition("Ready", running, None if running else "ContainersNotReady")
            status["containerStatuses"] = [
                self._container_status(c, phase, status, now, **container)
                for c in updated["spec"]["containers"]
            ]
        for key, value in (("reason", pod_reason), ("message", pod_message)):
            if value:
                status[key] = value
        status["conditions"] = list(conditions.values())
        return self.store.write(resources.lookup("pods"), updated)

    @staticmethod
    def _container_status(
        container: Obj,
        phase: str,
        status: Obj,
        now: str,
        *,
        exit_code: int | None = None,
        reason: str | None = None,
        message: str | None = None,
        restart_count: int | None = None,
    ) -> Obj:
        previous: Obj = next(
            (c for c in status.get("containerStatuses") or [] if c["name"] == container["name"]), {}
        )
        started = ((previous.get("state") or {}).get("running") or {}).get("startedAt") or now
        if phase == "Pending":
            state: Obj = {"waiting": {"reason": reason or "ContainerCreating"}}
            if message:
                state["waiting"]["message"] = message
        elif phase == "Running":
            state = {"running": {"startedAt": started}}
        else:
            code = exit_code if exit_code is not None else (0 if phase == "Succeeded" else 1)
            terminated: Obj = {
                "exitCode": code,
                "reason": reason or ("Completed" if code == 0 else "Error"),
                "startedAt": started,
                "finishedAt": now,
                "containerID": previous.get("containerID") or f"containerd://{secrets.token_hex(32)}",
            }
            if message:
                terminated["message"] = message
            state = {"terminated": terminated}
        return {
            "name": container["name"],
            "image": container.get("image", ""),
            "imageID": "",
            "ready": phase == "Running",
            "started": phase == "Running",
            "restartCount": restart_count if restart_count is not None else previous.get("restartCount", 0),
            "state": state,
            **({"containerID": state["terminated"]["containerID"]} if "terminated" in state else {}),
        }

    def set_pod_phase(
        self,
        name: str,
        phase: str,
        namespace: str | None = None,
        *,
        node: str | None = None,
        exit_code: int | None = None,
        reason: str | None = None,
        message: str | None = None,
        pod_reason: str | None = None,
        pod_message: str | None = None,
        restart_count: int | None = None,
    ) -> Obj:
        """Move a pod to Pending/Running/Succeeded/Failed with matching conditions and container states.

        Leaving Pending binds it to `node` (default "fake-node-1") unless it is bound already. reason and
        message describe the containers: their waiting reason when Pending (ImagePullBackOff, ...), their
        terminated reason when Failed (OOMKilled, ...). pod_reason and pod_message go on the pod status
        (Failed: DeadlineExceeded, Evicted, ...). A Failed container exits 1 unless exit_code says otherwise.
        """
        pods = resources.lookup("pods")
        with self.store.lock:
            pod = self.store.get(pods, self._ns(pods, namespace), name)
            bound = (pod.get("spec") or {}).get("nodeName")
            target = None if bound else node or (None if phase == "Pending" else "fake-node-1")
            return self._write_pod(
                pod,
                node=target,
                scheduled=True if bound or target else None,
                phase=phase,
                pod_reason=pod_reason,
                pod_message=pod_message,
                exit_code=exit_code,
                reason=reason,
                message=message,
                restart_count=restart_count,
            )

    def set_pod_unschedulable(self, name: str, message: str, namespace: str | None = None) -> Obj:
        """Leave a pod Pending with PodScheduled False/Unschedulable, as the scheduler reports no fit."""
        pods = resources.lookup("pods")
        pod = self.store.get(pods, self._ns(pods, namespace), name)
        return self._write_pod(pod, scheduled=False, unschedulable=message)

    def create_job_pod(
        self, job_name: str, namespace: str | None = None, *, phase: str = "Pending", index: int | None = None
    ) -> Obj:
        """Create a pod of a Job the way the job controller does: from its template, named
        `<job>-<random>`, labelled with the job's selector labels, owned by the job (so deletion cascades)."""
        jobs = resources.lookup("jobs")
        job = self.store.get(jobs, self._ns(jobs, namespace), job_name)
        template = copy.deepcopy(job["spec"]["template"])
        meta = template.get("metadata") or {}
        meta["generateName"] = f"{job_name}-" if index is None else f"{job_name}-{index}-"
        meta.pop("name", None)
        if index is not None:
            meta.setdefault("labels", {})["batch.kubernetes.io/job-completion-index"] = str(index)
            meta.setdefault("annotations", {})["batch.kubernetes.io/job-completion-index"] = str(index)
        meta["ownerReferences"] = [
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": job_name,
                "uid": job["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        meta["finalizers"] = [*meta.get("finalizers", [])]
        if not meta["finalizers"]:
            del meta["finalizers"]
        pod = self.create(
            {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"]},
            job["metadata"]["namespace"],
        )
        if phase != "Pending":
            pod = self.set_pod_phase(pod["metadata"]["name"], phase, job["metadata"]["namespace"])
        return pod

    def pods_of(self, job_name: str, namespace: str | None = None) -> list[Obj]:
        """The pods a Job's selector selects (what `kubectl logs job/x` looks at)."""
        job = self.get("jobs", job_name, namespace)
        match = selector_dict_matcher(job["spec"].get("selector"))
        return [
            p
            for p in self.list_objects("pods", job["metadata"]["namespace"])
            if match(p["metadata"].get("labels") or {})
        ]

    # --- events and logs ---------------------------------------------------------------------------------

    def record_event(
        self,
        involved: Obj,
        reason: str,
        message: str,
        *,
        type: str = "Normal",
        component: str = "fake-controller",
        count: int = 1,
    ) -> Obj:
        """Record a core/v1 Event about an object (what `kubectl describe` lists under Events)."""
        meta = involved["metadata"]
        event = event_body(
            involved,
            f"{meta['name']}.{secrets.token_hex(8)}",
            reason,
            message,
            type=type,
            component=component,
            now=timestamp(self.store.clock()),
            count=count,
        )
        return self.store.create(resources.lookup("events"), meta.get("namespace") or "default", event)

    def append_log(
        self, pod: str, text: str, namespace: str | None = None, container: str | None = None
    ) -> None:
        """Append to a container's log; open `follow` streams receive it at once."""
        self.store.append_log(namespace or self.default_namespace, pod, text, container)

    def set_log(
        self, pod: str, text: str, namespace: str | None = None, container: str | None = None
    ) -> None:
        self.store.set_log(namespace or self.default_namespace, pod, text, container)

    def set_clock(self, clock: Clock) -> None:
        """Replace the clock that stamps timestamps and ages (fake time instead of sleeping)."""
        self.store.clock = clock
