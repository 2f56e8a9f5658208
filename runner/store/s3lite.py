"""s3:// artifact store on the standard library alone: the agent's S3 client in job images without boto3.

Job images are built FROM any CUDA TensorFlow image with the runner wheel installed --no-deps, often
offline, so boto3 is rarely there; open_store picks this client whenever boto3 cannot be imported.
It keeps S3Store's contract (runner.store.s3) and its object format, so either client reads what
the other wrote: the content's sha256 in x-amz-meta-sha256, checked on every read (see s3common).

Configuration: the variables the AWS CLI reads. Credentials from AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN only (profiles, instance roles and web identity need
boto3); the region from AWS_REGION or AWS_DEFAULT_REGION (default us-east-1); AWS_ENDPOINT_URL_S3
or AWS_ENDPOINT_URL names an S3-compatible server, addressed path-style (http://host/bucket/key);
without one, AWS itself, virtual-hosted style (https://bucket.s3.region.amazonaws.com/key).
AWS_CA_BUNDLE names extra CA certificates. Requests are signed with SigV4 (runner.store.sigv4),
each with the real sha256 of its body.

Writes. A source is read twice, as S3Store does: once for the sha256 that goes in the metadata (a
stream that cannot seek is first spooled to a temporary file), then to upload it. Up to the
multipart threshold it is one PutObject; above it, CreateMultipartUpload, UploadPart per part
(16 MiB, more for objects over 160 GiB: S3 allows 10,000 parts) and CompleteMultipartUpload, one
part in memory at a time. Every PutObject and UploadPart carries its x-amz-checksum-sha256, which S3
verifies. What the upload read must hash to what was hashed first, or nothing becomes visible: the
PutObject is not sent, the multipart upload is aborted ("changed while it was uploaded"). Any
failure during a multipart upload, Ctrl-C included, aborts it.

Requests time out (connect and read), and are retried with exponential backoff and jitter on
connection errors, 5xx, 429 and S3's throttling codes; CreateMultipartUpload, which is not
idempotent, only where S3 cannot have acted on it (no connection, 503 or 429).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import io
import os
import random
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, cast
from urllib.parse import quote, unquote_plus, urlsplit
from xml.etree import ElementTree

from runner.errors import NotFoundError, RunnerError, StoreError, UserError
from runner.store.base import Digest, StoredObject
from runner.store.file import write_atomically
from runner.store.s3common import (
    CONNECT_TIMEOUT,
    CREDENTIALS_HINT,
    DEFAULT_REGION,
    DELETE_BATCH,
    DENIED_CODES,
    PAGE_SIZE,
    READ_TIMEOUT,
    SHA256_METADATA,
    Expected,
    Hints,
    Location,
    MiB,
    VerifyingReader,
    attempts_from_environment,
    endpoint_from_environment,
    region_from_environment,
    source_changed,
    upload_hashed,
)
from runner.store.sigv4 import Credentials, encode_path, sign

MULTIPART_THRESHOLD = 16 * MiB
PART_SIZE = 16 * MiB
MAX_PARTS = 10_000  # S3's limit for one multipart upload
BACKOFF_BASE = 0.25  # seconds; doubles per retry, with full jitter
BACKOFF_CAP = 20.0
IDLE_CONNECTIONS = 8
S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
SHA256_METADATA_HEADER = f"x-amz-meta-{SHA256_METADATA}"

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
class _Request:
    method: str
    name: str | None  # the object's name; None for a request about the bucket
    query: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    idempotent: bool = True
    stream: bool = False  # hand back a successful response unread
    error_in_body: bool = False  # a 200 may carry an <Error> (CompleteMultipartUpload)


@dataclass
class _Answer:
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


class S3LiteStore:
    """Objects at s3://bucket/prefix/KEY, over HTTP(S) with SigV4, standard library only.

    Everything is read from the environment at construction (see the module's docstring);
    endpoint_url, region and credentials override it. sleep is what waits between retries.
    """

    url: str

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        credentials: Credentials | None = None,
        max_attempts: int | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        part_size: int = PART_SIZE,
        page_size: int = PAGE_SIZE,
        delete_batch: int = DELETE_BATCH,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._location = Location.of(bucket, prefix)
        self.bucket = self._location.bucket
        self.prefix = self._location.prefix
        self.url = self._location.url
        self.endpoint_url = endpoint_url or endpoint_from_environment()
        self.region = region or region_from_environment() or DEFAULT_REGION
        self.endpoint = Endpoint.of(self.bucket, self.endpoint_url, self.region)
        self.credentials = credentials or credentials_from_environment()
        self.max_attempts = max_attempts if max_attempts is not None else attempts_from_environment()
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.page_size = page_size
        self.delete_batch = delete_batch
        self._sleep = sleep
        self._hints = Hints(self.url, self.bucket, self.endpoint_url)
        self._connections = _Connections(self.endpoint, connect_timeout, read_timeout)

    def location(self, key: str) -> str:
        return f"{self.url}/{key}"

    # -- writes ----------------------------------------------------------------------------------

    def put_stream(self, key: str, source: BinaryIO) -> Digest:
        name = self._location.name(key)
        return upload_hashed(
            source, self.multipart_threshold, lambda data, expected: self._upload(key, name, data, expected)
        )

    def put_bytes(self, key: str, data: bytes) -> Digest:
        name = self._location.name(key)
        digest = Digest(size=len(data), sha256=hashlib.sha256(data).hexdigest())
        self._upload(key, name, io.BytesIO(data), digest)
        return digest

    def _upload(self, key: str, name: str, source: BinaryIO, expected: Digest) -> None:
        if expected.size <= self.multipart_threshold:
            data = _read_up_to(source, expected.size + 1)  # one byte more: a source that grew shows it
            self._same(key, Digest(len(data), hashlib.sha256(data).hexdigest()), expected)
            self._put_object(key, name, data, expected)
        else:
            self._multipart(key, name, source, expected)

    def _same(self, key: str, read: Digest, expected: Digest) -> None:
        if read != expected:
            raise source_changed(self.location(key))

    def _put_object(self, key: str, name: str, data: bytes, digest: Digest) -> None:
        headers = {SHA256_METADATA_HEADER: digest.sha256, **_checksum_headers(data)}
        self._call(_Request("PUT", name, body=data, headers=headers), "write", key)

    def _multipart(self, key: str, name: str, source: BinaryIO, expected: Digest) -> None:
        part_size = max(self.part_size, -(-expected.size // MAX_PARTS))
        created = self._call(
            _Request(
                "POST",
                name,
                (("uploads", ""),),
                headers={SHA256_METADATA_HEADER: expected.sha256, "x-amz-checksum-algorithm": "SHA256"},
                idempotent=False,
            ),
            "write",
            key,
        )
        upload_id = _text(_xml(created.body), "UploadId")
        if not upload_id:
            raise StoreError(f"cannot write {self.location(key)}: S3 started no multipart upload")
        try:
            parts = self._send_parts(
                key, name, source, upload_id=upload_id, part_size=part_size, expected=expected
            )
            self._complete(key, name, upload_id, parts)
        except BaseException:  # Ctrl-C too: leave no parts behind
            with contextlib.suppress(Exception):
                self._call(_Request("DELETE", name, (("uploadId", upload_id),)), "write", key)
            raise

    def _send_parts(
        self, key: str, name: str, source: BinaryIO, *, upload_id: str, part_size: int, expected: Digest
    ) -> list[tuple[int, str, str]]:
        """UploadPart for each part of source; (number, ETag, checksum) of each, once all match expected."""
        parts: list[tuple[int, str, str]] = []
        whole = hashlib.sha256()
        size = 0
        while data := _read_up_to(source, part_size):
            whole.update(data)
            size += len(data)
            number = len(parts) + 1
            answer = self._call(
                _Request(
                    "PUT",
                    name,
                    (("partNumber", str(number)), ("uploadId", upload_id)),
                    body=data,
                    headers=_checksum_headers(data),
                ),
                "write",
                key,
            )
            parts.append((number, answer.headers.get("ETag", ""), _b64_sha256(data)))
        self._same(key, Digest(size, whole.hexdigest()), expected)
        return parts

    def _complete(self, key: str, name: str, upload_id: str, parts: Sequence[tuple[int, str, str]]) -> None:
        root = ElementTree.Element("CompleteMultipartUpload", xmlns=S3_NAMESPACE)
        for number, etag, checksum in parts:
            part = ElementTree.SubElement(root, "Part")
            ElementTree.SubElement(part, "PartNumber").text = str(number)
            ElementTree.SubElement(part, "ETag").text = etag
            ElementTree.SubElement(part, "ChecksumSHA256").text = checksum
        body = ElementTree.tostring(root, encoding="utf-8")
        request = _Request("POST", name, (("uploadId", upload_id),), body=body, error_in_body=True)
        self._call(request, "write", key)

    # -- reads -----------------------------------------------------------------------------------

    def get_bytes(self, key: str) -> bytes:
        name = self._location.name(key)
        answer = self._call(_Request("GET", name, headers={"x-amz-checksum-mode": "ENABLED"}), "read", key)
        self._expected(answer, key).verify(len(answer.body), hashlib.sha256(answer.body).hexdigest())
        return answer.body

    def download(self, key: str, destination: Path) -> Digest:
        name = self._location.name(key)
        request = _Request("GET", name, headers={"x-amz-checksum-mode": "ENABLED"}, stream=True)
        answer = self._call(request, "read", key)
        try:
            assert answer.response is not None
            body = _Body(answer.response, self.location(key), self._hints.endpoint_hint())
            return write_atomically(
                destination, cast(BinaryIO, VerifyingReader(body, self._expected(answer, key)))
            )
        finally:
            answer.close()

    def _expected(self, answer: _Answer, key: str) -> Expected:
        headers = answer.headers
        metadata = {
            name.lower().removeprefix("x-amz-meta-"): value
            for name, value in headers.items()
            if name.lower().startswith("x-amz-meta-")
        }
        length = headers.get("Content-Length")
        checksum = headers.get("x-amz-checksum-sha256")
        if (headers.get("x-amz-checksum-type") or "").upper() == "COMPOSITE":
            checksum = None
        return Expected(
            int(length) if length and length.isdigit() else None, metadata, self.location(key), checksum
        )

    def list(self, prefix: str) -> list[StoredObject]:
        start = self._location.name(prefix) + "/"
        found: list[StoredObject] = []
        token: str | None = None
        while True:
            query = [("list-type", "2"), ("prefix", start), ("max-keys", str(self.page_size))]
            query.append(("encoding-type", "url"))
            if token:
                query.append(("continuation-token", token))
            root = _xml(self._call(_Request("GET", None, tuple(query)), "list", prefix).body)
            encoded = _text(root, "EncodingType") == "url"
            for item in _children(root, "Contents"):
                stored = self._stored(item, encoded)
                if stored is not None:
                    found.append(stored)
            token = _text(root, "NextContinuationToken")
            if _text(root, "IsTruncated") != "true" or not token:
                break
        return sorted(found, key=lambda item: item.key)

    def _stored(self, item: ElementTree.Element, encoded: bool) -> StoredObject | None:
        name = _text(item, "Key") or ""
        key = self._location.relative(unquote_plus(name) if encoded else name)
        try:
            self._location.name(key)  # not one of ours: "a//b", "dir/" markers, "../x"
        except RunnerError:
            return None
        modified = _text(item, "LastModified")
        return StoredObject(
            key=key,
            size=int(_text(item, "Size") or 0),
            modified=datetime.fromisoformat(modified).timestamp() if modified else None,
        )

    def exists(self, key: str) -> bool:
        """Whether key is an object (by HEAD, which says no more than 404 for a missing bucket too)."""
        name = self._location.name(key)
        try:
            self._call(_Request("HEAD", name), "look up", key)
        except NotFoundError:
            return False
        return True

    # -- deletes ---------------------------------------------------------------------------------

    def delete(self, keys: Sequence[str]) -> None:
        """DeleteObjects, delete_batch keys a request, in order; a key S3 could not delete fails the call."""
        names = [self._location.name(key) for key in keys]  # every key checked before anything is deleted
        for start in range(0, len(names), self.delete_batch):
            batch = names[start : start + self.delete_batch]
            root = ElementTree.Element("Delete", xmlns=S3_NAMESPACE)
            ElementTree.SubElement(root, "Quiet").text = "true"
            for name in batch:
                ElementTree.SubElement(ElementTree.SubElement(root, "Object"), "Key").text = name
            body = ElementTree.tostring(root, encoding="utf-8")
            md5 = base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()
            headers = {"Content-MD5": md5, "Content-Type": "application/xml"}
            answer = self._call(
                _Request("POST", None, (("delete", ""),), body=body, headers=headers),
                "delete",
                self._location.relative(batch[0]),
            )
            failed = _children(_xml(answer.body), "Error")
            if failed:
                code = _text(failed[0], "Code") or "Error"
                key = self._location.relative(_text(failed[0], "Key") or "")
                more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
                message = _text(failed[0], "Message") or code
                raise StoreError(
                    f"cannot delete {self.location(key)}{more}: {code}: {message}",
                    hint=CREDENTIALS_HINT if code in DENIED_CODES else None,
                )

    # -- requests --------------------------------------------------------------------------------

    def _call(self, request: _Request, action: str, key: str | None) -> _Answer:
        """Send request, retrying what may be retried; a 2xx answer or a StoreError."""
        where = self.location(key) if key is not None else self.url
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
                code, message = _error_of(answer, request.error_in_body)
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

    def _send(self, request: _Request, credentials: Credentials, payload_hash: str) -> _Answer:
        """One exchange: sign, send, and read the answer (all of it, unless a stream was asked for)."""
        path = encode_path(self.endpoint.path(self.bucket, request.name))
        target = f"{path}?{_query_string(request.query)}" if request.query else path
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
                return _Answer(response.status, response.headers, b"", response, connection)
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
        return _Answer(response.status, response.headers, body)


class _Body:
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


def _query_string(query: Sequence[tuple[str, str]]) -> str:
    """The query as sent: encoded as it is signed, with bare names ("?uploads") where there is no value."""
    pairs = sorted((quote(name, safe="~"), quote(value, safe="~")) for name, value in query)
    return "&".join(f"{name}={value}" if value else name for name, value in pairs)


def _checksum_headers(data: bytes) -> dict[str, str]:
    """S3 checks the body against x-amz-checksum-sha256; SDKs also name the algorithm (moto needs that)."""
    return {"x-amz-checksum-sha256": _b64_sha256(data), "x-amz-sdk-checksum-algorithm": "SHA256"}


def _b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _read_up_to(source: BinaryIO, size: int) -> bytes:
    """size bytes of source, fewer only at its end (a read may return less than asked)."""
    chunks: list[bytes] = []
    wanted = size
    while wanted > 0:
        chunk = source.read(wanted)
        if not chunk:
            break
        chunks.append(chunk)
        wanted -= len(chunk)
    return b"".join(chunks)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _xml(body: bytes) -> ElementTree.Element:
    try:
        return ElementTree.fromstring(body)
    except ElementTree.ParseError as error:
        raise StoreError(f"S3 answered with something that is not XML ({error})") from None


def _children(element: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    return [child for child in element if _local(child.tag) == name]


def _text(element: ElementTree.Element, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            return child.text or ""
    return None


def _error_of(answer: _Answer, error_in_body: bool) -> tuple[str, str]:
    """The error code and message of an answer; ("", "") for a success."""
    if 200 <= answer.status < 300 and not (error_in_body and b"<Error" in answer.body[:512]):
        return "", ""
    code = message = ""
    if answer.body:
        with contextlib.suppress(ElementTree.ParseError):
            root = ElementTree.fromstring(answer.body)
            if _local(root.tag) == "Error":
                code, message = _text(root, "Code") or "", _text(root, "Message") or ""
    if not code:
        code = "InternalError" if answer.status < 300 else str(answer.status)
    message = message or http.client.responses.get(answer.status, code)
    region = answer.headers.get("x-amz-bucket-region")
    if region:
        message += f"; the bucket is in {region}"
    return code, message
