"""The standard-library S3 client's requests: where they go, how they travel, when they are retried.

``S3Transport.call`` signs a request with SigV4 (runner.store.sigv4, each with the real sha256 of its
body), sends it over a kept-alive http.client connection to the bucket's Endpoint, and reads the
answer: a 2xx ``Answer`` or a StoreError in S3's words (runner.store.s3common's hints). Requests time
out (connect and read), and are retried with exponential backoff and jitter on connection errors,
5xx, 429 and S3's throttling codes; a request that is not idempotent (CreateMultipartUpload) only
where S3 cannot have acted on it (no connection, 503 or 429). The XML helpers at the end read S3's
answers. Standard library only: the agent imports this in job images without boto3.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import random
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit
from xml.etree import ElementTree

from runner.errors import StoreError, UserError
from runner.store.s3common import CREDENTIALS_HINT, Hints
from runner.store.sigv4 import Credentials, encode_path, sign

BACKOFF_BASE = 0.25  # seconds; doubles per retry, with full jitter
BACKOFF_CAP = 20.0
IDLE_CONNECTIONS = 8

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_RETRY_CODES = frozenset(
    {"SlowDown", "InternalError", "RequestTimeout", "ServiceUnavailable", "Throttling", "ThrottlingException"}
)
_NOT_SEEN_STATUSES = frozenset({429, 503})  # the server turned the request away without acting on it
NO_CREDENTIALS_HINT = (
    f"{CREDENTIALS_HINT}. Without boto3 (as in job images) only AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY "
    "and AWS_SESSION_TOKEN are read: install boto3 in the image for profiles, instance roles or web identity"
)


def credentials_from_environment() -> Credentials | None:
    """AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN), or None when either is unset."""
    access_key = os.environ.get("AWS_ACCESS_KEY_ID", "").strip()
    secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY", "").strip()
    if not access_key or not secret_key:
        return None
    token = os.environ.get("AWS_SESSION_TOKEN", "").strip() or None
    return Credentials(access_key, secret_key, token)


@dataclass(frozen=True)
class Endpoint:
    """Where a bucket's requests go: scheme, host and port, and how a key becomes a path."""

    scheme: str
    host: str
    port: int
    base_path: str  # path-style: everything before /bucket/key; virtual-hosted: ""
    path_style: bool

    @classmethod
    def of(cls, bucket: str, endpoint_url: str | None, region: str) -> Endpoint:
        if endpoint_url is None:
            if "." in bucket:  # a dotted name breaks the TLS certificate's *.s3 wildcard: path-style
                return cls("https", f"s3.{region}.amazonaws.com", 443, "", True)
            return cls("https", f"{bucket}.s3.{region}.amazonaws.com", 443, "", False)
        parts = urlsplit(endpoint_url)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
            raise UserError(
                f"the S3 endpoint {endpoint_url!r} (AWS_ENDPOINT_URL) is not an http(s) URL",
                hint="set AWS_ENDPOINT_URL to the S3 server's URL, e.g. http://minio.example:9000",
            )
        default = 443 if parts.scheme == "https" else 80
        return cls(parts.scheme, parts.hostname, port or default, parts.path.rstrip("/"), True)

    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 address
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    def path(self, bucket: str, name: str | None) -> str:
        """The path (not yet encoded) of an object, or of the bucket itself when name is None."""
        if self.path_style:
            return f"{self.base_path}/{bucket}" + (f"/{name}" if name is not None else "")
        return f"/{name}" if name is not None else "/"

    def display(self) -> str:
        return f"{self.scheme}://{self.host_header()}{self.base_path}"


@dataclass(frozen=True)
class Request:
    method: str
    name: str | None  # the object's name; None for a request about the bucket
    query: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    idempotent: bool = True
    stream: bool = False  # hand back a successful response unread
    error_in_body: bool = False  # a 200 may carry an <Error> (CompleteMultipartUpload)


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    response: http.client.HTTPResponse | None = None  # stream=True: open, for the caller to read
    connection: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self.response is not None:
            self.response.close()
        if self.connection is not None:
            self.connection.close()


class _Unsent(Exception):
    """No connection: the server never saw the request, so any request may be sent again."""


class _Broken(Exception):
    """The exchange broke off after the request may have reached the server."""

    def __init__(self, error: BaseException, *, stale: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.stale = stale  # a kept-alive connection the server had closed: nothing was processed


def _reason(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "no answer in time (timed out)"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


class _Connections:
    """Kept-alive connections to the endpoint, one request at a time each (thread-safe)."""

    def __init__(self, endpoint: Endpoint, connect_timeout: float, read_timeout: float) -> None:
        self._endpoint = endpoint
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._context: ssl.SSLContext | None = None

    def take(self) -> tuple[http.client.HTTPConnection, bool]:
        """A connection and whether it was used before; _Unsent when none can be made."""
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return self._connect(), False

    def give_back(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < IDLE_CONNECTIONS:
                self._idle.append(connection)
                return
        connection.close()

    def _connect(self) -> http.client.HTTPConnection:
        endpoint = self._endpoint
        connection: http.client.HTTPConnection
        if endpoint.scheme == "https":
            connection = http.client.HTTPSConnection(
                endpoint.host, endpoint.port, timeout=self._connect_timeout, context=self._ssl_context()
            )
        else:
            connection = http.client.HTTPConnection(
                endpoint.host, endpoint.port, timeout=self._connect_timeout
            )
        try:
            connection.connect()
        except OSError as error:
            connection.close()
            raise _Unsent(_reason(error)) from error
        if connection.sock is not None:
            connection.sock.settimeout(self._read_timeout)
        return connection

    def _ssl_context(self) -> ssl.SSLContext:
        if self._context is None:
            bundle = os.environ.get("AWS_CA_BUNDLE", "").strip() or None
            self._context = ssl.create_default_context(cafile=bundle)
        return self._context


class S3Transport:
    """Signed requests to one bucket's endpoint over kept-alive connections, retried where they may be.

    url names the bucket and prefix in messages (s3://bucket/prefix); sleep is what waits between
    retries.
    """

    def __init__(
        self,
        *,
        url: str,
        bucket: str,
        endpoint: Endpoint,
        region: str,
        credentials: Credentials | None,
        max_attempts: int,
        hints: Hints,
        connect_timeout: float,
        read_timeout: float,
        sleep: Callable[[float], None],
    ) -> None:
        self.url = url
        self.bucket = bucket
        self.endpoint = endpoint
        self.region = region
        self.credentials = credentials
        self.max_attempts = max_attempts
        self._hints = hints
        self._sleep = sleep
        self._connections = _Connections(endpoint, connect_timeout, read_timeout)

    def call(self, request: Request, action: str, key: str | None) -> Answer:
        """Send request, retrying what may be retried; a 2xx answer or a StoreError."""
        where = f"{self.url}/{key}" if key is not None else self.url
        if self.credentials is None:
            raise StoreError(f"cannot {action} {where}: no AWS credentials found", hint=NO_CREDENTIALS_HINT)
        payload_hash = hashlib.sha256(request.body).hexdigest()
        attempt = 0
        while True:
            attempt += 1
            try:
                answer = self._send(request, self.credentials, payload_hash)
            except _Unsent as failure:
                retry, reason = True, f"cannot connect to {self.endpoint.display()}: {failure}"
            except _Broken as failure:
                retry = request.idempotent or failure.stale
                reason = f"the connection to {self.endpoint.display()} failed: {_reason(failure.error)}"
            else:
                code, message = error_of(answer, request.error_in_body)
                if not code:
                    return answer
                retry = (answer.status in _RETRY_STATUSES or code in _RETRY_CODES) and (
                    request.idempotent or answer.status in _NOT_SEEN_STATUSES
                )
                if not retry or attempt >= self.max_attempts:
                    raise self._hints.error(
                        code, message, answer.status, action=action, where=where, about_key=key is not None
                    )
                reason = ""
            if not retry or attempt >= self.max_attempts:
                raise StoreError(f"cannot {action} {where}: {reason}", hint=self._hints.endpoint_hint())
            self._sleep(random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)))

    def _send(self, request: Request, credentials: Credentials, payload_hash: str) -> Answer:
        """One exchange: sign, send, and read the answer (all of it, unless a stream was asked for)."""
        path = encode_path(self.endpoint.path(self.bucket, request.name))
        target = f"{path}?{query_string(request.query)}" if request.query else path
        headers = {"Host": self.endpoint.host_header(), **request.headers}
        signed = sign(
            request.method,
            path,
            request.query,
            headers,
            payload_hash=payload_hash,
            credentials=credentials,
            region=self.region,
            now=datetime.now(UTC),
        )
        connection, reused = self._connections.take()
        try:
            connection.request(
                request.method,
                target,
                body=request.body if request.method in ("PUT", "POST") else None,
                headers=signed,
            )
            response = connection.getresponse()
            if request.stream and 200 <= response.status < 300:
                return Answer(response.status, response.headers, b"", response, connection)
            body = response.read()
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            stale = reused and isinstance(
                error, http.client.RemoteDisconnected | BrokenPipeError | ConnectionResetError
            )
            raise _Broken(error, stale=stale) from error
        if response.will_close:
            connection.close()
        else:
            self._connections.give_back(connection)
        return Answer(response.status, response.headers, body)


class ResponseBody:
    """A streamed response body whose broken connection is a StoreError that says so."""

    def __init__(self, response: http.client.HTTPResponse, where: str, hint: str) -> None:
        self._response = response
        self._where = where
        self._hint = hint

    def read(self, amt: int | None = None, /) -> bytes:
        try:
            return self._response.read(amt)
        except (OSError, http.client.HTTPException) as error:
            raise StoreError(
                f"cannot read {self._where}: the connection broke off ({_reason(error)})",
                hint=f"try again; {self._hint}",
            ) from error


def query_string(query: Sequence[tuple[str, str]]) -> str:
    """The query as sent: encoded as it is signed, with bare names ("?uploads") where there is no value."""
    pairs = sorted((quote(name, safe="~"), quote(value, safe="~")) for name, value in query)
    return "&".join(f"{name}={value}" if value else name for name, value in pairs)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def xml(body: bytes) -> ElementTree.Element:
    try:
        return ElementTree.fromstring(body)
    except ElementTree.ParseError as error:
        raise StoreError(f"S3 answered with something that is not XML ({error})") from None


def children(element: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    return [child for child in element if _local(child.tag) == name]


def text(element: ElementTree.Element, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            return child.text or ""
    return None


def error_of(answer: Answer, error_in_body: bool) -> tuple[str, str]:
    """The error code and message of an answer; ("", "") for a success."""
    if 200 <= answer.status < 300 and not (error_in_body and b"<Error" in answer.body[:512]):
        return "", ""
    code = message = ""
    if answer.body:
        with contextlib.suppress(ElementTree.ParseError):
            root = ElementTree.fromstring(answer.body)
            if _local(root.tag) == "Error":
                code, message = text(root, "Code") or "", text(root, "Message") or ""
    if not code:
        code = "InternalError" if answer.status < 300 else str(answer.status)
    message = message or http.client.responses.get(answer.status, code)
    region = answer.headers.get("x-amz-bucket-region")
    if region:
        message += f"; the bucket is in {region}"
    return code, message
