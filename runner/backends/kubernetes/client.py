"""The official Kubernetes client as the cluster backend uses it: one client per kubeconfig and context
for the process, configured like kubectl, retrying 429 and 5xx within client-side timeouts; raw JSON
reads, paged LISTs, and API failures said as what the runner was doing."""

from __future__ import annotations

import json
import os
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
# The server's table of a LIST (what `kubectl get` prints) without the objects (includeObject=None): a row of
# a few cells per object, its name among them, 50 times smaller than whole Jobs (whose managedFields alone
# are ~11 KB each). Plain JSON where a server does not offer it.
TABLE = "application/json;as=Table;g=meta.k8s.io;v=v1,application/json"
JOBS_PATH = "/apis/batch/v1/namespaces/{namespace}/jobs"
PODS_PATH = "/api/v1/namespaces/{namespace}/pods"


def _answer(read: Callable[[], Any]) -> Any:
    """read() -> (data bytes, release) parsed as JSON; an answer cut mid-body (a dropped connection, a
    proxy timeout: urllib3's ProtocolError, or JSON that ends early) is asked again, as client-go does for
    GETs: the body is read after urllib3's retries are done."""
    import urllib3

    for attempt in range(READ_RETRIES + 1):
        data, release = read()
        try:
            return json.loads(data())
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
) -> Any:
    """GET path (its {namespace} filled in) as the API's JSON, on the shared client, without the client's
    API classes: importing BatchV1Api and CoreV1Api (their pydantic models) costs more than a second, more
    than `runner list --cluster` spends on everything else. Errors as the API methods raise them
    (ApiException), retried as they are."""
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

    return _answer(read)


def list_pages(
    context: str | None, path: str, namespace: str, selector: str, *, accept: str = JSON
) -> Iterator[dict[str, Any]]:
    """Every object a namespaced LIST selects, PAGE_SIZE at a time (limit and continue), as raw JSON."""
    token: str | None = None
    while True:
        query: list[tuple[str, Any]] = [("labelSelector", selector), ("limit", PAGE_SIZE)]
        if token:
            query.append(("continue", token))
        page = get_json(context, path, namespace, query, accept=accept)
        yield from page.get("items") or []
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return


def list_names(context: str | None, path: str, namespace: str, selector: str) -> Iterator[str]:
    """The names of the objects a namespaced LIST selects, page by page, from the server's table (its
    Name column) without the objects themselves; from the items where the server answers a plain list."""
    token: str | None = None
    while True:
        query: list[tuple[str, Any]] = [
            ("labelSelector", selector),
            ("limit", PAGE_SIZE),
            ("includeObject", "None"),
        ]
        if token:
            query.append(("continue", token))
        page = get_json(context, path, namespace, query, accept=TABLE)
        if page.get("kind") == "Table":
            columns = [column.get("name") for column in page.get("columnDefinitions") or []]
            at = columns.index("Name") if "Name" in columns else 0
            yield from (str(row["cells"][at]) for row in page.get("rows") or [])
        else:
            yield from (str(item["metadata"]["name"]) for item in page.get("items") or [])
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return


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
