"""The official Kubernetes client as the cluster backend uses it: one client per kubeconfig and context
for the process, configured like kubectl, retrying 429 and 5xx within client-side timeouts; raw JSON
reads, paged LISTs, and API failures said as what the runner was doing."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.errors import BackendError

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

API_RETRIES = 5
CONNECT_RETRIES = 1  # a refused or unreachable address is said at once, not after seconds of backoff
READ_RETRIES = 3  # GETs whose answer was cut mid-body (a dropped connection), read again
PAGE_SIZE = 500  # objects per LIST page (limit/continue), as kubectl's --chunk-size
SELECT_AT_MOST = 100  # runs named in one set-based label selector; more: list the namespace page by page
SELECTS_AT_MOST = 10  # selectors of runs whose Jobs changed (seen in a metadata list) before listing all
REQUEST_TIMEOUT = (5, 30)  # seconds to connect, to read: no call waits forever
CONFIG_HINT = "set KUBECONFIG (or ~/.kube/config) as for kubectl, or run inside a pod with a service account"


def _retrying(configuration: Any) -> Any:
    """Retry 429 and 5xx answers (every verb: names are run ids, so a repeated create answers 409, which
    the runner reads as its own object) with backoff, within client-side timeouts. A connection that is
    refused is tried once more only: an unreachable cluster is said in a second, not after the whole
    backoff of every call."""
    from urllib3.util.retry import Retry

    configuration.retries = Retry(
        total=API_RETRIES,
        connect=CONNECT_RETRIES,
        backoff_factor=0.2,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=None,
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    return configuration


def _kubeconfig() -> str | None:
    """KUBECONFIG as it is now: the client reads it once, when first imported, and would miss a change."""
    return os.environ.get("KUBECONFIG") or None


def api_client(context: str | None = None) -> ApiClient:
    """A client configured like kubectl: KUBECONFIG and its current (or given) context, else in-cluster."""
    from kubernetes import client, config

    configuration = client.Configuration()
    try:
        config.load_kube_config(
            config_file=_kubeconfig(), context=context, client_configuration=configuration
        )
    except (config.ConfigException, FileNotFoundError, TypeError) as outside:
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            raise BackendError(f"no Kubernetes cluster configured: {outside}", hint=CONFIG_HINT) from None
    return client.ApiClient(_retrying(configuration))


_CLIENTS: dict[tuple[str | None, str, tuple[int, ...]], ApiClient] = {}
_CLIENTS_LOCK = threading.Lock()


def shared_client(context: str | None = None) -> ApiClient:
    """api_client, made once per kubeconfig (path and modification time) and context for the process:
    its connection pool is then reused by every call (it is thread-safe), where a fresh client per call
    paid a kubeconfig parse and a new connection each time."""
    config = _kubeconfig() or str(Path("~/.kube/config").expanduser())
    stamps = []
    for part in config.split(os.pathsep):  # KUBECONFIG may list several files
        try:
            stamps.append(Path(part).stat().st_mtime_ns)
        except OSError:
            stamps.append(-1)
    key = (context, config, tuple(stamps))
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            _CLIENTS[key] = api_client(context)
        return _CLIENTS[key]


def apis(context: str | None) -> tuple[Any, Any]:
    """The batch/v1 and core/v1 APIs on the shared client of the context."""
    from kubernetes import client

    api = shared_client(context)
    return client.BatchV1Api(api), client.CoreV1Api(api)


JSON = "application/json"
# Each object's metadata only (name, labels, resourceVersion), as a PartialObjectMetadataList: what tells
# whether a Job changed since it was last read. Plain JSON where a server does not offer it.
METADATA = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
JOBS_PATH = "/apis/batch/v1/namespaces/{namespace}/jobs"
PODS_PATH = "/api/v1/namespaces/{namespace}/pods"


def _answer(read: Callable[[], Any], parse: Callable[[bytes], Any] = json.loads) -> Any:
    """read() -> (data bytes, release) parsed as JSON (by parse); an answer cut mid-body (a dropped
    connection, a proxy timeout: urllib3's ProtocolError, or JSON that ends early) is asked again, as
    client-go does for GETs: the body is read after urllib3's retries are done."""
    import urllib3

    for attempt in range(READ_RETRIES + 1):
        data, release = read()
        try:
            return parse(data())
        except (urllib3.exceptions.HTTPError, ValueError):
            if attempt == READ_RETRIES:
                raise
        finally:
            release()
    raise AssertionError("unreachable")  # pragma: no cover


def read_json(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A GET's answer through a client API method, as the API's JSON (no model deserialization)."""

    def read() -> tuple[Callable[[], bytes], Callable[[], None]]:
        response = call(*args, _preload_content=False, _request_timeout=REQUEST_TIMEOUT, **kwargs)
        return (lambda: response.data), response.release_conn

    return _answer(read)


def get_json(
    context: str | None,
    path: str,
    namespace: str,
    query: Sequence[tuple[str, Any]] = (),
    *,
    accept: str = JSON,
    parse: Callable[[bytes], Any] = json.loads,
) -> Any:
    """GET path (its {namespace} filled in) as the API's JSON (parsed by parse), on the shared client,
    without the client's API classes: importing BatchV1Api and CoreV1Api (their pydantic models) costs
    more than a second, more than `runner list --cluster` spends on everything else. Errors as the API
    methods raise them (ApiException), retried as they are."""
    from kubernetes.client.exceptions import ApiException

    api = shared_client(context)

    def read() -> tuple[Callable[[], bytes], Callable[[], None]]:
        request = api.param_serialize(
            "GET",
            path,
            path_params={"namespace": namespace},
            query_params=list(query),
            header_params={"Accept": accept},
            auth_settings=["BearerToken"],
        )
        answer = api.call_api(*request, _request_timeout=REQUEST_TIMEOUT)
        if not 200 <= answer.status <= 299:
            answer.read()
            answer.response.release_conn()
            raise ApiException.from_response(http_resp=answer, body=None, data=None)
        return (lambda: answer.response.data), answer.response.release_conn

    return _answer(read, parse)


def list_pages(
    context: str | None,
    path: str,
    namespace: str,
    selector: str,
    *,
    accept: str = JSON,
    parse: Callable[[bytes], Any] = json.loads,
) -> Iterator[dict[str, Any]]:
    """Every object a namespaced LIST selects, PAGE_SIZE at a time (limit and continue), as raw JSON."""
    token: str | None = None
    while True:
        query: list[tuple[str, Any]] = [("labelSelector", selector), ("limit", PAGE_SIZE)]
        if token:
            query.append(("continue", token))
        page = get_json(context, path, namespace, query, accept=accept, parse=parse)
        yield from page.get("items") or []
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return


def list_metadata(context: str | None, path: str, namespace: str, selector: str) -> Iterator[dict[str, Any]]:
    """The metadata (without managedFields) of each object a namespaced LIST selects, page by page: a
    PartialObjectMetadataList, or the objects' own where the server answers a plain list."""
    for item in list_pages(context, path, namespace, selector, accept=METADATA, parse=without_managed_fields):
        metadata: dict[str, Any] = item.get("metadata") or {}
        metadata.pop("managedFields", None)
        yield metadata


def job_metadata(context: str | None, namespace: str, selector: str) -> dict[str, dict[str, Any]]:
    """The metadata of the namespace's Jobs that selector selects, by name, listed metadata-only."""
    listed = list_metadata(context, JOBS_PATH, namespace, selector)
    return {str(metadata["name"]): metadata for metadata in listed}


# managedFields (who wrote which field: several KB an object, most of a metadata list's bytes) are cut
# from the answer's bytes before it is parsed. The API server writes ObjectMeta's fields in their Go order,
# managedFields last, and a PartialObjectMetadata's metadata last: each list item ends `...]}}`.
_MANAGED_FIELDS = b'"managedFields"'
_ITEM_END = re.compile(rb"\]\s*\}\s*\}")
_WHITESPACE = b" \t\r\n"


def without_managed_fields(data: bytes) -> Any:
    """A PartialObjectMetadataList's JSON parsed without its items' managedFields, which are cut from the
    bytes first (cut_managed_fields); the whole answer parsed where they cannot be cut safely."""
    cut = cut_managed_fields(data)
    if cut is not None:
        try:
            return json.loads(cut)
        except ValueError:
            pass  # not laid out as the API server writes it: parsed whole instead
    return json.loads(data)


def cut_managed_fields(data: bytes) -> bytes | None:
    """data (a PartialObjectMetadataList) without each item's `"managedFields":[...]`, or None when it is not
    such a list, or when an item is not laid out as the API server writes it (managedFields the last field
    of metadata, metadata the last of the item): a cut must never reach into another item."""
    if b"PartialObjectMetadataList" not in data[:512]:
        return None
    parts: list[bytes] = []
    at = 0
    while (key := data.find(_MANAGED_FIELDS, at)) >= 0:
        end = _ITEM_END.search(data, key)
        if end is None or b'"metadata"' in data[key : end.start()]:
            return None  # it would run past this item's metadata
        start = key
        while start > at and data[start - 1] in _WHITESPACE:
            start -= 1
        if start > at and data[start - 1] == ord(","):
            start -= 1
        parts.append(data[at:start])
        at = end.start() + 1  # the "]" goes with the field; the closing braces stay
    parts.append(data[at:])
    return b"".join(parts)


def default_namespace(context: str | None = None) -> str:
    """The namespace of the kubeconfig's current (or given) context, as kubectl uses it."""
    from kubernetes import config

    try:
        contexts, current = config.list_kube_config_contexts(config_file=_kubeconfig())
    except (config.ConfigException, FileNotFoundError, TypeError):
        return "default"
    chosen = next((item for item in contexts if item["name"] == context), current) if context else current
    return str((chosen or {}).get("context", {}).get("namespace") or "default")


def api_error(error: Exception, doing: str) -> BackendError:
    """An API failure said as what the runner was doing; a 403 with the hint to the runner's Role."""
    status = getattr(error, "status", None)
    reason = getattr(error, "reason", None) or str(error)
    if status == 403:
        return BackendError(
            f"{doing}: forbidden ({reason})",
            hint="an admin grants what the runner needs: `runner rbac -n NAMESPACE | kubectl apply -f -`",
        )
    if not status:  # no answer: refused, unreachable, timed out
        return BackendError(f"{doing}: the Kubernetes API did not answer ({reason})")
    return BackendError(f"{doing}: the Kubernetes API answered {status} {reason}")
