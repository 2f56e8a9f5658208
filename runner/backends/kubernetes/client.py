"""The official Kubernetes client as the cluster backend uses it: one client per kubeconfig and context
for the process, configured like kubectl, retrying 429 and 5xx within client-side timeouts; raw JSON
reads, paged LISTs, and API failures said as what the runner was doing."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from runner.errors import BackendError

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from runner.backends.kubernetes.reads import DirectReads

API_RETRIES = 5
CONNECT_RETRIES = 1  # a refused or unreachable address is said at once, not after seconds of backoff
READ_RETRIES = 3  # GETs whose answer was cut mid-body (a dropped connection), read again
PAGE_SIZE = 500  # objects per LIST page (limit/continue), as kubectl's --chunk-size
SELECT_AT_MOST = 100  # runs named in one set-based label selector; more: list the namespace page by page
SELECTS_AT_MOST = 10  # selectors of runs whose Jobs changed (seen in a metadata list) before listing all
REQUEST_TIMEOUT = (5, 30)  # seconds to connect, to read: no call waits forever
CONFIG_HINT = "set KUBECONFIG (or ~/.kube/config) as for kubectl, or run inside a pod with a service account"


def retry_policy() -> Any:
    """Retry 429 and 5xx answers (every verb: names are run ids, so a repeated create answers 409, which
    the runner reads as its own object) with backoff, within client-side timeouts. A connection that is
    refused is tried once more only: an unreachable cluster is said in a second, not after the whole
    backoff of every call."""
    from urllib3.util.retry import Retry

    return Retry(
        total=API_RETRIES,
        connect=CONNECT_RETRIES,
        backoff_factor=0.2,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=None,
        respect_retry_after_header=True,
        raise_on_status=False,
    )


def _kubeconfig() -> str | None:
    """KUBECONFIG as it is now: the client reads it once, when first imported, and would miss a change."""
    return os.environ.get("KUBECONFIG") or None


def _kubeconfig_path() -> str:
    """The kubeconfig's path(s), as kubectl takes them: KUBECONFIG (several, os.pathsep between), else
    ~/.kube/config."""
    return _kubeconfig() or str(Path("~/.kube/config").expanduser())


def _kubeconfig_key(context: str | None) -> tuple[str | None, str, tuple[int, ...]]:
    """The context, the kubeconfig's path(s) and their modification times: what a client made from
    them is kept by (a changed kubeconfig makes another)."""
    config = _kubeconfig_path()
    stamps = []
    for part in config.split(os.pathsep):  # KUBECONFIG may list several files
        try:
            stamps.append(Path(part).stat().st_mtime_ns)
        except OSError:
            stamps.append(-1)
    return context, config, tuple(stamps)


def _kubeconfig_document(config: str) -> tuple[Mapping[str, Any], Path] | None:
    """The kubeconfig file's document and the directory its relative paths start from; None where
    KUBECONFIG lists several files (merged as the client merges them), or the file is missing or no
    kubeconfig (the client then says what is wrong, or reads the cluster it runs in)."""
    if os.pathsep in config:
        return None
    import yaml

    path = Path(config).expanduser()
    try:
        document = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return (document, path.parent) if isinstance(document, Mapping) else None


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
    configuration.retries = retry_policy()
    return client.ApiClient(configuration)


_CLIENTS: dict[tuple[str | None, str, tuple[int, ...]], ApiClient] = {}
_READS: dict[tuple[str | None, str, tuple[int, ...]], DirectReads | None] = {}
_CLIENTS_LOCK = threading.Lock()


def shared_client(context: str | None = None) -> ApiClient:
    """api_client, made once per kubeconfig (path and modification time) and context for the process:
    its connection pool is then reused by every call (it is thread-safe), where a fresh client per call
    paid a kubeconfig parse and a new connection each time."""
    key = _kubeconfig_key(context)
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            _CLIENTS[key] = api_client(context)
        return _CLIENTS[key]


def direct_reads(context: str | None = None) -> DirectReads | None:
    """GETs without the Kubernetes client (runner.backends.kubernetes.reads), made once per kubeconfig
    and context as shared_client is; None where the kubeconfig's credentials need the client."""
    from runner.backends.kubernetes.pure.kubeconfig import static_access
    from runner.backends.kubernetes.reads import DirectReads

    key = _kubeconfig_key(context)
    with _CLIENTS_LOCK:
        if key not in _READS:
            found = _kubeconfig_document(key[1])
            access = None if found is None else static_access(found[0], context, found[1])
            _READS[key] = None if access is None else DirectReads(access, retry_policy(), REQUEST_TIMEOUT)
        return _READS[key]


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
    parse: Callable[[bytes], Any] | None = None,
) -> Any:
    """GET path (its {namespace} filled in) as the API's JSON (parsed by parse, by default without its
    objects' managedFields, which runner never reads: without_managed_fields). Straight through urllib3
    where the kubeconfig's credentials are static (direct_reads), else on the shared client, without the
    client's API classes: importing BatchV1Api and CoreV1Api (their pydantic models) costs more than a
    second. Errors as the API methods raise them (ApiException), retried as they are."""
    reads = direct_reads(context)
    if reads is None:
        read = _client_read(context, path, namespace, query, accept)
    else:
        read = _direct_read(reads, path.format(namespace=quote(namespace, safe="")), query, accept)
    return _answer(read, parse or without_managed_fields)


Read = Callable[[], tuple[Callable[[], bytes], Callable[[], None]]]  # a GET: its body, and its release


def _direct_read(reads: DirectReads, path: str, query: Sequence[tuple[str, Any]], accept: str) -> Read:
    """get_json's read straight through urllib3 (static credentials)."""

    def read() -> tuple[Callable[[], bytes], Callable[[], None]]:
        response = reads.get(path, query, accept)
        return _body(response, response)

    return read


def _client_read(
    context: str | None, path: str, namespace: str, query: Sequence[tuple[str, Any]], accept: str
) -> Read:
    """get_json's read through the Kubernetes client (a kubeconfig that needs it)."""
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
        return _body(answer, answer.response)

    return read


def _body(answer: Any, response: Any) -> tuple[Callable[[], bytes], Callable[[], None]]:
    """An answer's body to read and its connection's release (answer: the client's response, over
    urllib3's response; or urllib3's itself). One that is not 2xx is raised as the API methods raise it
    (ApiException, the client's exceptions imported only then), its connection released."""
    if not 200 <= answer.status <= 299:
        answer.read()
        response.release_conn()
        from kubernetes.client.exceptions import ApiException

        raise ApiException.from_response(http_resp=answer, body=None, data=None)
    return (lambda: response.data), response.release_conn


def list_pages(
    context: str | None,
    path: str,
    namespace: str,
    selector: str,
    *,
    accept: str = JSON,
) -> Iterator[dict[str, Any]]:
    """Every object a namespaced LIST selects, PAGE_SIZE at a time (limit and continue), as raw JSON
    (without managedFields, as get_json). The next page is asked for while the caller works through
    this one: the API server makes it meanwhile, instead of the caller waiting for each page in turn."""

    def page(token: str | None) -> Any:
        query: list[tuple[str, Any]] = [("labelSelector", selector), ("limit", PAGE_SIZE)]
        if token:
            query.append(("continue", token))
        return get_json(context, path, namespace, query, accept=accept)

    current = page(None)
    while True:
        token = (current.get("metadata") or {}).get("continue")
        coming = Prefetch(page, token) if token else None
        yield from current.get("items") or []
        if coming is None:
            return
        current = coming.result()


class Prefetch:
    """call(argument) under way in a thread of its own; result() waits for its value, or raises what
    it raised."""

    def __init__(self, call: Callable[[Any], Any], argument: Any) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(call, argument), daemon=True)
        self._thread.start()

    def _run(self, call: Callable[[Any], Any], argument: Any) -> None:
        try:
            self._value = call(argument)
        except BaseException as error:  # raised again in the caller's thread by result()
            self._error = error

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def list_metadata(context: str | None, path: str, namespace: str, selector: str) -> Iterator[dict[str, Any]]:
    """The metadata (without managedFields) of each object a namespaced LIST selects, page by page: a
    PartialObjectMetadataList, or the objects' own where the server answers a plain list."""
    for item in list_pages(context, path, namespace, selector, accept=METADATA):
        metadata: dict[str, Any] = item.get("metadata") or {}
        metadata.pop("managedFields", None)
        yield metadata


def job_metadata(context: str | None, namespace: str, selector: str) -> dict[str, dict[str, Any]]:
    """The metadata of the namespace's Jobs that selector selects, by name, listed metadata-only."""
    listed = list_metadata(context, JOBS_PATH, namespace, selector)
    return {str(metadata["name"]): metadata for metadata in listed}


# managedFields (who wrote which field: several KB an object, half of a Job list's bytes and three quarters
# of its parsing, most of a metadata list's) are cut from the answer's bytes before it is parsed. The API
# server writes ObjectMeta's fields in their Go order, managedFields last; their array holds objects only, so
# its first "]" closes it, followed by the metadata's "}" and then the object's end ("}": a
# PartialObjectMetadata's metadata is its last field) or its next field (`,"spec":` of a Job or a Pod).
_MANAGED_FIELDS = b'"managedFields"'
_METADATA_END = re.compile(rb"\]\s*\}\s*(?:\}|,\s*\"[A-Za-z]+\"\s*:)")
_WHITESPACE = b" \t\r\n"


def without_managed_fields(data: bytes) -> Any:
    """An API answer's JSON (a list, or one object) parsed without its objects' managedFields, which are
    cut from the bytes first (cut_managed_fields); the whole answer parsed where they cannot be cut safely."""
    cut = cut_managed_fields(data)
    if cut is not None:
        try:
            return json.loads(cut)
        except ValueError:
            pass  # not laid out as the API server writes it: parsed whole instead
    return json.loads(data)


def cut_managed_fields(data: bytes) -> bytes | None:
    """data (an API answer) without each object's `"managedFields":[...]`, or None when an object is not
    laid out as the API server writes it (managedFields the last field of metadata): a cut must never
    reach past its object's metadata."""
    parts: list[bytes] = []
    at = 0
    while (key := data.find(_MANAGED_FIELDS, at)) >= 0:
        end = _METADATA_END.search(data, key)
        if end is None or b'"metadata"' in data[key : end.start()]:
            return None  # it would run past this object's metadata
        start = key
        while start > at and data[start - 1] in _WHITESPACE:
            start -= 1
        if start > at and data[start - 1] == ord(","):
            start -= 1
        parts.append(data[at:start])
        at = end.start() + 1  # the "]" goes with the field; the metadata's end and what follows stay
    parts.append(data[at:])
    return b"".join(parts)


def default_namespace(context: str | None = None) -> str:
    """The namespace of the kubeconfig's current (or given) context, as kubectl uses it."""
    from runner.backends.kubernetes.pure.kubeconfig import namespace_of

    found = _kubeconfig_document(_kubeconfig_path())
    if found is not None:
        return namespace_of(found[0], context)
    from kubernetes import config

    try:
        contexts, current = config.list_kube_config_contexts(config_file=_kubeconfig())
    except (config.ConfigException, FileNotFoundError, TypeError):
        return "default"
    chosen = next((item for item in contexts if item["name"] == context), current) if context else current
    return str((chosen or {}).get("context", {}).get("namespace") or "default")


def api_status(error: BaseException) -> int | None:
    """The status of an API server's answer that error is (the client's ApiException, which get_json
    raises too), else None: told without importing the client, as an error cannot be one of its
    exceptions before the client is imported."""
    exceptions = sys.modules.get("kubernetes.client.exceptions")
    if exceptions is None or not isinstance(error, exceptions.ApiException):
        return None
    return int(error.status or 0)


@contextlib.contextmanager
def api_errors(doing: str) -> Iterator[None]:
    """The API's answers raised inside said as what the runner was doing (api_error); anything else
    raised as it is."""
    try:
        yield
    except Exception as error:
        if api_status(error) is None:
            raise
        raise api_error(error, doing) from None


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
