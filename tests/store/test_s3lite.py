"""Tests for runner.store.s3lite.S3LiteStore, the standard-library S3 client, against moto's server.

The same promises as S3Store (test_s3.py): whole objects or nothing, digests of what was written,
verified reads, sorted and paginated listings, batched deletes, clear errors with hints. Requests
are watched, and faults injected, by a recording proxy in front of moto (the network faked at the
server, not our functions patched). SigV4 is checked three ways: AWS's published test vectors,
botocore's signer on the same requests, and a moto server that verifies every signature.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import pytest

from runner.errors import NotFoundError, StoreError, UnsafePathError, UserError
from runner.store import Digest, S3Store, StoredObject, open_store
from runner.store.collect import collect_run, read_manifest
from runner.store.s3common import CREDENTIALS_HINT
from runner.store.s3lite import S3LiteStore
from runner.store.s3lite_transport import Endpoint
from runner.store.sigv4 import (
    EMPTY_SHA256,
    Credentials,
    canonical_request,
    encode_path,
    sign,
    signature,
    signing_key,
    string_to_sign,
)
from tests.support.s3_server import REGION, clear_aws_environment
from tests.support.s3util import (
    PREFIX,
    MiB,
    b64_sha256,
    closed_port,
    digest_of,
    object_names,
    pending_uploads,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PART = 5 * MiB  # the smallest part S3 (and moto) accepts


# --- a recording, fault-injecting proxy in front of moto ------------------------------------------


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names in lowercase
    body: bytes

    @property
    def operation(self) -> str:
        """The S3 operation, as boto3 names it."""
        q, method = self.query, self.method
        if method == "POST":
            if "uploads" in q:
                return "CreateMultipartUpload"
            return "CompleteMultipartUpload" if "uploadId" in q else "DeleteObjects"
        if method == "PUT":
            return "UploadPart" if "partNumber" in q else "PutObject"
        if method == "DELETE":
            return "AbortMultipartUpload" if "uploadId" in q else "DeleteObject"
        if method == "HEAD":
            return "HeadObject"
        return "ListObjectsV2" if "list-type" in q else "GetObject"


Fault = Callable[[Seen], tuple[int, bytes] | None]


@dataclass
class Proxy:
    url: str
    seen: list[Seen] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)

    @property
    def operations(self) -> list[str]:
        return [seen.operation for seen in self.seen]

    def fail(self, operation: str, status: int, code: str, times: int = 1) -> None:
        """Answer the next `times` requests of operation with an S3 error instead of passing them on."""
        left = [times]

        def fault(seen: Seen) -> tuple[int, bytes] | None:
            if seen.operation != operation or left[0] == 0:
                return None
            left[0] -= 1
            return status, f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()

        self.faults.append(fault)


@pytest.fixture
def proxy(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Proxy]:
    """A proxy to moto that records every request; AWS_ENDPOINT_URL points at it."""
    upstream = urlsplit(aws_env)
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    recorder = Proxy(f"http://127.0.0.1:{server.server_address[1]}")

    class Forward(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            split = urlsplit(self.path)
            seen = Seen(
                self.command,
                unquote(split.path),
                dict(parse_qsl(split.query, keep_blank_values=True)),
                {name.lower(): value for name, value in self.headers.items()},
                body,
            )
            recorder.seen.append(seen)
            for fault in recorder.faults:
                if (planned := fault(seen)) is not None:
                    self.reply(planned[0], [("Content-Type", "application/xml")], planned[1])
                    return
            connection = http.client.HTTPConnection(upstream.hostname or "", upstream.port)
            connection.request(self.command, self.path, body=body or None, headers=dict(self.headers))
            response = connection.getresponse()
            data = response.read()
            connection.close()
            headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_HEADERS]
            self.reply(response.status, headers, data, response.getheader("Content-Length"))

        def reply(
            self, status: int, headers: list[tuple[str, str]], data: bytes, length: str | None = None
        ) -> None:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header(
                "Content-Length", length if self.command == "HEAD" and length else str(len(data))
            )
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server.RequestHandlerClass = Forward
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", recorder.url)
    yield recorder
    server.shutdown()
    server.server_close()


HOP_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "server", "date"})


@dataclass
class Sleeps:
    """A fake sleep: records the waits instead of waiting."""

    waits: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def store(bucket: str, proxy: Proxy, sleeps: Sleeps) -> S3LiteStore:
    """A store through the proxy, with the smallest parts S3 allows so that multipart tests stay small."""
    return S3LiteStore(bucket, PREFIX, multipart_threshold=PART, part_size=PART, sleep=sleeps)


class Pipe(io.RawIOBase):
    """A stream that cannot seek (like a pipe), read in small pieces."""

    def __init__(self, data: bytes) -> None:
        self.inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.inner.read(min(len(buffer), 64 * 1024))
        buffer[: len(data)] = data
        return len(data)


class File(io.BytesIO):
    """A seekable source that calls on_read before every read once `after` bytes were read."""

    def __init__(self, data: bytes, after: int, on_read: Callable[[], None]) -> None:
        super().__init__(data)
        self.after = after
        self.total = 0
        self.on_read = on_read

    def read(self, size: int | None = -1) -> bytes:
        if self.total >= self.after:
            self.on_read()
        data = super().read(size)
        self.total += len(data)
        return data


# --- SigV4 ----------------------------------------------------------------------------------------

EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def test_signing_key_derivation_matches_aws_documentation() -> None:
    """The worked example of "Deriving the signing key" in AWS's SigV4 documentation."""
    key = signing_key(EXAMPLE_SECRET, "20120215", "us-east-1", "iam")
    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"


def test_get_vanilla_from_the_aws_sigv4_test_suite() -> None:
    canonical, signed = canonical_request(
        "GET", "/", [], {"Host": "example.amazonaws.com", "X-Amz-Date": "20150830T123600Z"}, EMPTY_SHA256
    )
    assert canonical == (
        "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
        + EMPTY_SHA256
    )
    assert signed == "host;x-amz-date"
    text = string_to_sign("20150830T123600Z", "20150830/us-east-1/service/aws4_request", canonical)
    assert text.splitlines()[-1] == "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
    assert (
        signature(EXAMPLE_SECRET, "20150830T123600Z", "us-east-1", "service", text)
        == "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    )


def test_the_s3_get_object_example_from_the_s3_documentation() -> None:
    """S3's "Example: GET Object" for header-based SigV4 (examplebucket, test.txt, a Range header)."""
    headers = sign(
        "GET",
        "/test.txt",
        [],
        {"Host": "examplebucket.s3.amazonaws.com", "Range": "bytes=0-9"},
        payload_hash=EMPTY_SHA256,
        credentials=Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        region="us-east-1",
        now=datetime(2013, 5, 24, tzinfo=UTC),
    )
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )
    assert headers["x-amz-date"] == "20130524T000000Z"


@pytest.mark.parametrize(
    ("name", "query"),
    [
        ("team/runs/j/r/outputs/my model (1).keras", [("partNumber", "3"), ("uploadId", "a/b+c=")]),
        ("team/runs/ü/~x*y", []),
        ("", [("list-type", "2"), ("prefix", "team/runs/j r/"), ("continuation-token", "1/+x==")]),
    ],
)
def test_signatures_match_botocores(name: str, query: list[tuple[str, str]]) -> None:
    """The same request signed by botocore's S3SigV4Auth (what boto3 sends and moto checks) and by us."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    now = datetime(2024, 2, 29, 23, 59, 58, tzinfo=UTC)
    body = b"some bytes"
    payload = hashlib.sha256(body).hexdigest()
    path = encode_path(f"/bucket/{name}" if name else "/bucket")
    headers = {"Host": "127.0.0.1:9000", "x-amz-meta-sha256": payload, "Content-MD5": "abc=="}
    ours = sign(
        "PUT",
        path,
        query,
        headers,
        payload_hash=payload,
        credentials=Credentials("AKID", "secret", "a token"),
        region="eu-west-1",
        now=now,
    )
    url = "http://127.0.0.1:9000" + path
    if query:
        url += "?" + "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in query)
    sent = {name: value for name, value in ours.items() if name != "Authorization"}
    request = AWSRequest(method="PUT", url=url, data=body, headers=sent)
    request.context["timestamp"] = sent["x-amz-date"]  # as a server checking the signature does
    auth = S3SigV4Auth(BotoCredentials("AKID", "secret", "a token"), "s3", "eu-west-1")
    expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    assert ours["Authorization"].endswith(f", Signature={expected}")
    assert ours["x-amz-security-token"] == "a token"


# --- configuration --------------------------------------------------------------------------------


def test_configuration_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clear_aws_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "7")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://minio.example:9000")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "https://s3.minio.example:9443/base/")  # the S3 one wins
    store = S3LiteStore("bkt", "p")
    assert store.credentials == Credentials("key", "secret", "token")
    assert (store.region, store.max_attempts) == ("eu-west-1", 7)
    assert store.endpoint == Endpoint("https", "s3.minio.example", 9443, "/base", path_style=True)
    assert store.endpoint.path("bkt", "p/x y") == "/base/bkt/p/x y"
    assert store.endpoint.host_header() == "s3.minio.example:9443"


def test_aws_itself_is_addressed_virtual_hosted_in_the_region(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clear_aws_environment(monkeypatch, tmp_path)
    assert S3LiteStore("bkt").endpoint == Endpoint("https", "bkt.s3.us-east-1.amazonaws.com", 443, "", False)
    assert S3LiteStore("bkt").endpoint.path("bkt", "a/b") == "/a/b"
    monkeypatch.setenv("AWS_REGION", "ap-northeast-2")
    assert S3LiteStore("bkt").endpoint.host == "bkt.s3.ap-northeast-2.amazonaws.com"
    dotted = S3LiteStore("my.bucket").endpoint  # *.s3 certificates do not cover dotted names
    assert (dotted.host, dotted.path("my.bucket", "k"), dotted.host_header()) == (
        "s3.ap-northeast-2.amazonaws.com",
        "/my.bucket/k",
        "s3.ap-northeast-2.amazonaws.com",
    )


@pytest.mark.parametrize("endpoint", ["minio:9000", "ftp://host", "http://:9000", "http://host:port"])
def test_a_bad_endpoint_is_a_user_error(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    with pytest.raises(UserError, match="is not an http"):
        S3LiteStore("bkt")


def test_bad_buckets_and_prefixes_are_refused_as_s3store_refuses_them() -> None:
    with pytest.raises(UserError, match="is not an S3 bucket name"):
        S3LiteStore("bad bucket")
    with pytest.raises(UserError, match="empty parts are not allowed"):
        S3LiteStore("bucket", "a//b")
    assert S3LiteStore("bucket", "/a/b/").url == "s3://bucket/a/b"
    assert S3LiteStore("bucket", "a").location("j/r/x") == "s3://bucket/a/j/r/x"


def test_the_session_token_is_sent_and_signed(
    bucket: str, proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "temporary")
    S3LiteStore(bucket).put_bytes("a", b"x")
    (put,) = proxy.seen
    assert put.headers["x-amz-security-token"] == "temporary"
    assert "x-amz-security-token" in put.headers["authorization"].split("SignedHeaders=")[1]


# --- writing and reading --------------------------------------------------------------------------


def test_bytes_round_trip_in_one_checksummed_put(
    store: S3LiteStore, proxy: Proxy, s3: S3Client, bucket: str
) -> None:
    data = b'{"accuracy": 0.98}\n'
    assert store.put_bytes("mnist/r1/outputs/metrics.json", data) == digest_of(data)
    (put,) = proxy.seen
    assert put.operation == "PutObject"
    assert put.path == f"/{bucket}/{PREFIX}/mnist/r1/outputs/metrics.json"
    assert put.headers["x-amz-checksum-sha256"] == b64_sha256(data)
    assert put.headers["x-amz-content-sha256"] == hashlib.sha256(data).hexdigest()  # the real payload hash
    assert store.get_bytes("mnist/r1/outputs/metrics.json") == data
    head = s3.head_object(
        Bucket=bucket, Key=f"{PREFIX}/mnist/r1/outputs/metrics.json", ChecksumMode="ENABLED"
    )
    assert head["Metadata"] == {"sha256": hashlib.sha256(data).hexdigest()}  # as S3Store writes it
    assert head["ChecksumSHA256"] == b64_sha256(data)


def test_streams_round_trip(store: S3LiteStore, tmp_path: Path) -> None:
    data = os.urandom(3 * MiB + 17)
    assert store.put_stream("j/r/pipe.bin", cast(BinaryIO, Pipe(data))) == digest_of(data)
    source = io.BytesIO(b"HEADER" + data)
    source.seek(6)  # a stream is read from where it stands
    assert store.put_stream("j/r/file.bin", source) == digest_of(data)
    for key in ("j/r/pipe.bin", "j/r/file.bin"):
        assert store.download(key, tmp_path / key) == digest_of(data)
        assert (tmp_path / key).read_bytes() == data


def test_empty_object_and_replacing_an_object(store: S3LiteStore, tmp_path: Path) -> None:
    assert store.put_bytes("j/r/empty", b"") == digest_of(b"")
    assert store.get_bytes("j/r/empty") == b""
    assert store.download("j/r/empty", tmp_path / "empty") == digest_of(b"")
    store.put_bytes("j/r/metrics.json", b'{"loss": 1}')
    store.put_stream("j/r/metrics.json", io.BytesIO(b'{"loss": 0.5}'))
    assert store.get_bytes("j/r/metrics.json") == b'{"loss": 0.5}'
    assert [item.key for item in store.list("j")] == ["j/r/empty", "j/r/metrics.json"]


@pytest.mark.parametrize("source", ["file", "pipe"])
def test_a_large_object_goes_up_in_checksummed_parts(
    store: S3LiteStore, proxy: Proxy, s3: S3Client, bucket: str, tmp_path: Path, *, source: str
) -> None:
    data = os.urandom(2 * PART + MiB)
    stream = io.BytesIO(data) if source == "file" else Pipe(data)
    assert store.put_stream("j/r/model.keras", cast(BinaryIO, stream)) == digest_of(data)
    assert proxy.operations == ["CreateMultipartUpload", *["UploadPart"] * 3, "CompleteMultipartUpload"]
    create, *uploads, complete = proxy.seen
    assert create.headers["x-amz-meta-sha256"] == hashlib.sha256(data).hexdigest()
    parts = [data[:PART], data[PART : 2 * PART], data[2 * PART :]]
    assert [seen.query["partNumber"] for seen in uploads] == ["1", "2", "3"]
    assert [seen.headers["x-amz-checksum-sha256"] for seen in uploads] == [b64_sha256(part) for part in parts]
    assert [seen.body for seen in uploads] == parts
    assert b64_sha256(parts[2]).encode() in complete.body
    head = s3.head_object(Bucket=bucket, Key=f"{PREFIX}/j/r/model.keras")
    assert head["ContentLength"] == len(data)
    assert head["Metadata"] == {"sha256": hashlib.sha256(data).hexdigest()}
    assert store.download("j/r/model.keras", tmp_path / "model.keras") == digest_of(data)
    assert (tmp_path / "model.keras").read_bytes() == data
    assert pending_uploads(s3, bucket) == []


def test_an_object_of_exactly_the_threshold_is_one_put(store: S3LiteStore, proxy: Proxy) -> None:
    store.put_bytes("j/r/a", os.urandom(PART))
    store.put_stream("j/r/b", io.BytesIO(os.urandom(PART)))
    assert proxy.operations == ["PutObject", "PutObject"]


@pytest.mark.parametrize("error", [OSError(5, "Input/output error"), KeyboardInterrupt()])
def test_a_source_failing_halfway_aborts_the_upload(
    store: S3LiteStore, proxy: Proxy, s3: S3Client, bucket: str, error: BaseException
) -> None:
    store.put_bytes("j/r/model.h5", b"old model")
    data = os.urandom(2 * PART + MiB)
    seen: list[bytes] = []

    def fail() -> None:
        seen.append(store.get_bytes("j/r/model.h5"))  # readers meanwhile see the old object whole
        raise error

    # hashed first (one pass), then read again for the upload: it breaks before the third part
    with pytest.raises(type(error)) as info:
        store.put_stream("j/r/model.h5", File(data, after=len(data) + 2 * PART, on_read=fail))
    assert info.value is error  # the source's own error, as the file store raises it
    operations = [op for op in proxy.operations if op != "GetObject"]
    assert operations == [
        "PutObject",
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPart",
        "AbortMultipartUpload",
    ]
    assert seen == [b"old model"]
    assert pending_uploads(s3, bucket) == []
    assert store.get_bytes("j/r/model.h5") == b"old model"
    assert store.put_stream("j/r/model.h5", io.BytesIO(data)) == digest_of(data)
    assert store.get_bytes("j/r/model.h5") == data


def test_a_part_the_server_refuses_aborts_the_upload(
    store: S3LiteStore, proxy: Proxy, s3: S3Client, bucket: str
) -> None:
    proxy.fail("UploadPart", 400, "EntityTooLarge")
    with pytest.raises(StoreError, match="EntityTooLarge"):
        store.put_bytes("j/r/model.h5", os.urandom(PART + 1))
    assert proxy.operations == ["CreateMultipartUpload", "UploadPart", "AbortMultipartUpload"]
    assert pending_uploads(s3, bucket) == []
    assert object_names(s3, bucket) == []


def test_a_source_changing_during_the_upload_is_refused(
    store: S3LiteStore, proxy: Proxy, s3: S3Client, bucket: str
) -> None:
    """Hashed once for the metadata, read again for the upload: a job still writing is caught."""
    for size in (1000, 2 * PART):
        source = File(b"a" * size, after=size, on_read=lambda: None)

        def change(source: File = source, middle: int = size // 2) -> None:
            position = source.tell()
            source.seek(middle)
            source.write(b"CHANGED")
            source.seek(position)
            source.on_read = lambda: None

        source.on_read = change
        with pytest.raises(StoreError, match="the source changed while it was uploaded"):
            store.put_stream("j/r/log", source)
    assert "PutObject" not in proxy.operations  # the small one never went up
    assert proxy.operations[-2:] == ["UploadPart", "AbortMultipartUpload"]  # the large one never completed
    assert object_names(s3, bucket) == []
    assert pending_uploads(s3, bucket) == []


# --- retries --------------------------------------------------------------------------------------


def test_throttling_and_server_errors_are_retried_with_growing_backoff(
    store: S3LiteStore, proxy: Proxy, sleeps: Sleeps
) -> None:
    proxy.fail("PutObject", 503, "SlowDown", times=2)
    proxy.fail("GetObject", 500, "InternalError", times=1)
    store.put_bytes("j/r/a", b"data")
    assert store.get_bytes("j/r/a") == b"data"
    assert proxy.operations == ["PutObject"] * 3 + ["GetObject"] * 2
    assert len(sleeps.waits) == 3
    assert all(0 <= wait <= 20 for wait in sleeps.waits)


def test_retries_stop_after_max_attempts(bucket: str, proxy: Proxy, sleeps: Sleeps) -> None:
    proxy.fail("HeadObject", 500, "InternalError", times=10)
    with pytest.raises(StoreError, match="500: Internal Server Error"):  # a HEAD answer has no body
        S3LiteStore(bucket, max_attempts=3, sleep=sleeps).exists("a")
    assert proxy.operations == ["HeadObject"] * 3
    assert len(sleeps.waits) == 2


def test_starting_a_multipart_upload_is_not_repeated_after_a_500(
    store: S3LiteStore, proxy: Proxy, s3: S3Client, bucket: str
) -> None:
    """A 500 may have started an upload: sending it again would leave one behind; 503 says it did not."""
    proxy.fail("CreateMultipartUpload", 503, "SlowDown")
    store.put_bytes("j/r/a", os.urandom(PART + 1))
    assert proxy.operations[:2] == ["CreateMultipartUpload"] * 2
    proxy.seen.clear()
    proxy.fail("CreateMultipartUpload", 500, "InternalError")
    with pytest.raises(StoreError, match="InternalError"):
        store.put_bytes("j/r/b", os.urandom(PART + 1))
    assert proxy.operations == ["CreateMultipartUpload"]
    assert object_names(s3, bucket) == [f"{PREFIX}/j/r/a"]


def test_an_error_in_a_200_answer_to_complete_is_an_error(
    store: S3LiteStore, proxy: Proxy, s3: S3Client, bucket: str
) -> None:
    """S3 may answer CompleteMultipartUpload with 200 and an <Error> body: it is retried, then completes."""
    proxy.fail("CompleteMultipartUpload", 200, "InternalError")
    data = os.urandom(PART + 1)
    store.put_bytes("j/r/a", data)
    assert proxy.operations[-2:] == ["CompleteMultipartUpload"] * 2
    assert store.get_bytes("j/r/a") == data


# --- reading --------------------------------------------------------------------------------------


def test_download_writes_atomically_and_returns_the_digest(store: S3LiteStore, tmp_path: Path) -> None:
    data = os.urandom(MiB)
    store.put_bytes("j/r/outputs/model.onnx", data)
    target = tmp_path / "deep" / "model.onnx"
    assert store.download("j/r/outputs/model.onnx", target) == digest_of(data)
    assert target.read_bytes() == data
    assert sorted(path.name for path in target.parent.iterdir()) == ["model.onnx"]


@pytest.mark.parametrize("size", [14_000, 2 * PART])
def test_a_changed_object_is_a_checksum_mismatch(
    store: S3LiteStore, s3: S3Client, bucket: str, tmp_path: Path, size: int
) -> None:
    data = (b"the real model" * size)[:size]
    store.put_bytes("j/r/model.keras", data)
    name = f"{PREFIX}/j/r/model.keras"
    metadata = s3.head_object(Bucket=bucket, Key=name)["Metadata"]
    s3.put_object(Bucket=bucket, Key=name, Body=(b"a forged model" * size)[:size], Metadata=metadata)
    target = tmp_path / "model.keras"
    target.write_bytes(b"what was here before")
    with pytest.raises(StoreError, match="checksum mismatch") as info:
        store.download("j/r/model.keras", target)
    assert hashlib.sha256(data).hexdigest() in str(info.value)
    assert info.value.hint
    assert target.read_bytes() == b"what was here before"  # not replaced by the bad bytes
    assert [path.name for path in tmp_path.iterdir()] == ["model.keras"]  # no temporary file left
    with pytest.raises(StoreError, match="checksum mismatch"):
        store.get_bytes("j/r/model.keras")


def test_objects_written_by_other_tools_are_read(
    store: S3LiteStore, s3: S3Client, bucket: str, tmp_path: Path
) -> None:
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/j/r/by-hand.txt", Body=b"hi")
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/j/r/checked.txt", Body=b"ho", ChecksumAlgorithm="SHA256")
    assert store.get_bytes("j/r/by-hand.txt") == b"hi"
    assert store.download("j/r/checked.txt", tmp_path / "x") == digest_of(b"ho")


def test_missing_keys_are_not_found(store: S3LiteStore, tmp_path: Path) -> None:
    store.put_bytes("j/r/file", b"x")
    for key in ("j/r/missing", "j/r", "j/r/file/below"):
        with pytest.raises(NotFoundError) as info:
            store.get_bytes(key)
        assert str(info.value) == f"{store.location(key)} does not exist"
        with pytest.raises(NotFoundError):
            store.download(key, tmp_path / "target")
        assert not store.exists(key)
    assert not (tmp_path / "target").exists()
    assert store.exists("j/r/file")


@pytest.mark.parametrize("key", ["../escape", "/abs", "a//b", "a/./b", "", "a\\b"])
def test_unsafe_keys_are_refused_before_any_request(
    store: S3LiteStore, proxy: Proxy, key: str, tmp_path: Path
) -> None:
    for action in (
        lambda: store.put_bytes(key, b"x"),
        lambda: store.put_stream(key, io.BytesIO(b"x")),
        lambda: store.get_bytes(key),
        lambda: store.download(key, tmp_path / "x"),
        lambda: store.list(key),
        lambda: store.exists(key),
        lambda: store.delete(["j/ok", key]),
    ):
        with pytest.raises(UnsafePathError):
            action()
    assert proxy.seen == []


# --- listing --------------------------------------------------------------------------------------


def test_list_is_sorted_relative_and_stays_under_the_prefix(
    store: S3LiteStore, s3: S3Client, bucket: str
) -> None:
    for key, data in [("j/r/b", b"bb"), ("j/r/a/x", b"x"), ("j/r2/other", b"o"), ("j/r/c", b"")]:
        store.put_bytes(key, data)
    s3.put_object(Bucket=bucket, Key="elsewhere/j/r/z", Body=b"not in the store")
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/j/r/folder/", Body=b"")  # a console "folder"
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/j/r//odd", Body=b"")  # not a key a store writes
    assert store.list("j/r") == [
        StoredObject("j/r/a/x", 1),
        StoredObject("j/r/b", 2),
        StoredObject("j/r/c", 0),
    ]
    assert store.list("j") == [*store.list("j/r"), StoredObject("j/r2/other", 1)]
    assert store.list("nothing") == []


def test_odd_key_characters_round_trip(store: S3LiteStore, tmp_path: Path) -> None:
    keys = ["j/r/outputs/my model (1).keras", "j/r/outputs/a+b=c&d?e#f", "j/r/outputs/ünï ¢ødé/100%.txt"]
    for key in keys:
        store.put_bytes(key, key.encode())
    assert [item.key for item in store.list("j/r")] == sorted(keys)
    for key in keys:
        assert store.get_bytes(key) == key.encode()
        assert store.download(key, tmp_path / "x") == digest_of(key.encode())
    store.delete(keys[:2])
    assert [item.key for item in store.list("j")] == [keys[2]]


def test_list_follows_pages_and_says_when_objects_were_written(
    bucket: str, proxy: Proxy, s3: S3Client
) -> None:
    store = S3LiteStore(bucket, PREFIX, page_size=7)
    keys = [f"j/r/outputs/{index:03d}" for index in range(25)]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=f"{PREFIX}/{key}", Body=b"x")
    listed = store.list("j")
    assert listed == [StoredObject(key, 1) for key in keys]
    assert proxy.operations == ["ListObjectsV2"] * 4  # 7 + 7 + 7 + 4
    written = s3.head_object(Bucket=bucket, Key=f"{PREFIX}/{keys[0]}")["LastModified"]
    assert listed[0].modified == written.timestamp()


def test_list_of_more_than_1000_objects(store: S3LiteStore, proxy: Proxy, s3: S3Client, bucket: str) -> None:
    keys = [f"j/r/logs/{index:04d}.log" for index in range(1001)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=bucket, Key=f"{PREFIX}/{key}", Body=b""), keys))
    proxy.seen.clear()
    assert [item.key for item in store.list("j/r")] == keys
    assert proxy.operations == ["ListObjectsV2"] * 2


# --- deleting -------------------------------------------------------------------------------------


def test_delete_removes_only_the_keys_given(store: S3LiteStore, s3: S3Client, bucket: str) -> None:
    for key in ("j/j-1/MANIFEST.json", "j/j-1/outputs/a", "j/j-2/run.json"):
        store.put_bytes(key, b"x")
    s3.put_object(Bucket=bucket, Key="elsewhere/j/j-1/outputs/a", Body=b"not ours")
    store.delete(["j/j-1/MANIFEST.json", "j/j-1/outputs/a", "j/j-1/never-there"])
    assert sorted(object_names(s3, bucket)) == ["elsewhere/j/j-1/outputs/a", f"{PREFIX}/j/j-2/run.json"]
    store.delete([])


def test_delete_sends_batches_in_order_with_their_md5(bucket: str, proxy: Proxy, s3: S3Client) -> None:
    store = S3LiteStore(bucket, PREFIX, delete_batch=2)
    keys = [f"j/j-1/outputs/{index}" for index in range(5)]
    for key in keys:
        store.put_bytes(key, b"x")
    proxy.seen.clear()
    store.delete(keys)
    assert proxy.operations == ["DeleteObjects"] * 3
    for seen, batch in zip(proxy.seen, [keys[0:2], keys[2:4], keys[4:]], strict=True):
        assert seen.headers["content-md5"] == base64.b64encode(hashlib.md5(seen.body).digest()).decode()
        assert [f"<Key>{PREFIX}/{key}</Key>" in seen.body.decode() for key in batch] == [True] * len(batch)
    assert object_names(s3, bucket) == []


def test_delete_keeps_to_a_thousand_keys_a_request(
    store: S3LiteStore, proxy: Proxy, s3: S3Client, bucket: str
) -> None:
    store.put_bytes("j/j-1/outputs/0000", b"x")
    proxy.seen.clear()
    store.delete([f"j/j-1/outputs/{index:04d}" for index in range(1001)])
    assert proxy.operations == ["DeleteObjects"] * 2
    assert object_names(s3, bucket) == []


def test_delete_reports_the_keys_s3_would_not_delete(store: S3LiteStore, proxy: Proxy, bucket: str) -> None:
    errors = "".join(
        f"<Error><Key>{PREFIX}/j/j-1/{name}</Key><Code>AccessDenied</Code>"
        "<Message>Access Denied</Message></Error>"
        for name in ("a", "b")
    )
    proxy.faults.append(lambda seen: (200, f"<DeleteResult>{errors}</DeleteResult>".encode()))
    with pytest.raises(StoreError) as caught:
        store.delete(["j/j-1/a", "j/j-1/b"])
    assert (
        caught.value.message
        == f"cannot delete s3://{bucket}/{PREFIX}/j/j-1/a (and 1 more): AccessDenied: Access Denied"
    )
    assert caught.value.hint is not None and "s3:DeleteObject" in caught.value.hint


# --- one format, two clients ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [100, 9 * MiB])  # S3Store's multipart threshold is 8 MiB
def test_what_s3store_writes_s3lite_reads_and_the_other_way(
    bucket: str, aws_env: str, tmp_path: Path, size: int
) -> None:
    boto = S3Store(bucket, PREFIX)
    lite = S3LiteStore(bucket, PREFIX, multipart_threshold=PART, part_size=PART)
    first, second = os.urandom(size), os.urandom(size)
    boto.put_stream("j/r/by-boto3", io.BytesIO(first))
    lite.put_stream("j/r/by-lite", io.BytesIO(second))
    for reader in (boto, lite):
        assert reader.get_bytes("j/r/by-boto3") == first
        assert reader.get_bytes("j/r/by-lite") == second
        assert reader.download("j/r/by-lite", tmp_path / "x") == digest_of(second)
        assert reader.list("j") == [StoredObject("j/r/by-boto3", size), StoredObject("j/r/by-lite", size)]
    lite.delete(["j/r/by-boto3"])
    boto.delete(["j/r/by-lite"])
    assert lite.list("j") == []


def test_a_run_collected_by_s3lite_is_read_back_by_s3store(bucket: str, aws_env: str, tmp_path: Path) -> None:
    outputs, logs = tmp_path / "outputs", tmp_path / "logs"
    (outputs / "saved_model").mkdir(parents=True)
    logs.mkdir()
    files = {
        "outputs/model.keras": os.urandom(PART + 3),
        "outputs/metrics.json": json.dumps({"accuracy": 0.97}).encode(),
        "outputs/saved_model/saved_model.pb": os.urandom(1000),
        "logs/attempt-1.log": b"epoch 1/5\n",
    }
    for path, data in files.items():
        (tmp_path / path).write_bytes(data)
    lite = S3LiteStore(bucket, PREFIX, multipart_threshold=PART, part_size=PART)
    collection = collect_run(
        lite,
        job="mnist",
        run_id="r-1",
        manifest_text="kind: Job\n",
        summary={"state": "succeeded"},
        logs_dir=logs,
        outputs_dir=outputs,
    )
    assert collection.refused == []
    boto = S3Store(bucket, PREFIX)
    entries = read_manifest(boto, "mnist", "r-1")
    assert entries is not None
    assert sorted(entry.path for entry in entries) == sorted([*files, "job.yaml", "run.json"])
    for entry in entries:
        assert boto.download(f"mnist/r-1/{entry.path}", tmp_path / "back" / entry.path) == Digest(
            entry.size, entry.sha256
        )
        if entry.path in files:
            assert digest_of(files[entry.path]) == Digest(entry.size, entry.sha256)


# --- errors ---------------------------------------------------------------------------------------


def test_a_missing_bucket_is_a_store_error_naming_it(aws_env: str, tmp_path: Path) -> None:
    store = S3LiteStore("no-such-bucket-here", PREFIX, multipart_threshold=PART, part_size=PART)
    for action in (
        lambda: store.put_bytes("j/r/a", b"x"),
        lambda: store.put_stream("j/r/a", io.BytesIO(os.urandom(PART + 1))),
        lambda: store.get_bytes("j/r/a"),
        lambda: store.download("j/r/a", tmp_path / "a"),
        lambda: store.list("j"),
        lambda: store.delete(["j/r/a"]),
    ):
        with pytest.raises(StoreError) as info:
            action()
        assert not isinstance(info.value, NotFoundError)
        assert "the bucket 'no-such-bucket-here' does not exist" in str(info.value)
        assert info.value.hint is not None
        assert "bucket name" in info.value.hint
        assert "AWS_ENDPOINT_URL" in info.value.hint


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_an_unreachable_endpoint_is_a_store_error_with_a_hint(
    aws_env: str, monkeypatch: pytest.MonkeyPatch, silent_endpoint: str, sleeps: Sleeps, kind: str
) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}" if kind == "refused" else silent_endpoint
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    store = S3LiteStore("bkt", PREFIX, max_attempts=2, connect_timeout=0.5, read_timeout=0.5, sleep=sleeps)
    for action in (lambda: store.put_bytes("j/r/a", b"x"), lambda: store.get_bytes("j/r/a")):
        with pytest.raises(StoreError, match=r"cannot (write|read) s3://bkt/team/runs/j/r/a") as info:
            action()
        assert ("refused" if kind == "refused" else "timed out") in str(info.value)
        assert info.value.hint is not None
        assert endpoint in info.value.hint
        assert "AWS_ENDPOINT_URL" in info.value.hint
    assert len(sleeps.waits) == 2  # one retry of each


def test_access_denied_is_a_store_error_about_credentials(bucket: str, proxy: Proxy, sleeps: Sleeps) -> None:
    proxy.faults.append(
        lambda seen: (403, b"<Error><Code>InvalidAccessKeyId</Code><Message>nope</Message></Error>")
    )
    store = S3LiteStore(bucket, PREFIX, sleep=sleeps)
    for action in (
        lambda: store.put_bytes("j/r/a", b"x"),
        lambda: store.get_bytes("j/r/a"),
        lambda: store.list("j"),
        lambda: store.exists("j/r/a"),  # HEAD: no body, the status says it
    ):
        with pytest.raises(StoreError, match="access denied") as info:
            action()
        assert info.value.hint == CREDENTIALS_HINT
    assert sleeps.waits == []  # not retried


def test_no_credentials_is_a_store_error_that_names_the_variables(
    aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StoreError, match="no AWS credentials found") as info:
        S3LiteStore("bkt", PREFIX).put_bytes("j/r/a", b"x")
    assert info.value.hint is not None
    assert "AWS_ACCESS_KEY_ID" in info.value.hint
    assert "install boto3" in info.value.hint


def test_a_wrong_region_says_where_the_bucket_is(bucket: str, proxy: Proxy) -> None:
    def moved(seen: Seen) -> tuple[int, bytes]:
        return 301, b"<Error><Code>PermanentRedirect</Code><Message>use the right endpoint</Message></Error>"

    proxy.faults.append(moved)
    with pytest.raises(StoreError, match="the bucket is in another region") as info:
        S3LiteStore(bucket).get_bytes("a")
    assert info.value.hint == "set AWS_REGION to the bucket's region"


# --- a server that checks every signature ---------------------------------------------------------

SIGNING_SERVER = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
"""


@dataclass(frozen=True)
class SigningServer:
    endpoint: str
    bucket: str
    credentials: Credentials


@pytest.fixture(scope="module")
def signing_server() -> Iterator[SigningServer]:
    """moto in a process of its own with authentication on: it recomputes and compares every signature."""
    import boto3

    process = subprocess.Popen(
        [sys.executable, "-c", SIGNING_SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        endpoint = f"http://127.0.0.1:{process.stdout.readline().strip()}"
        session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name=REGION)
        iam = session.client("iam", endpoint_url=endpoint)
        iam.create_user(UserName="runner")
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
        iam.put_user_policy(UserName="runner", PolicyName="s3", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="runner")["AccessKey"]
        session.client("s3", endpoint_url=endpoint).create_bucket(Bucket="signed")
        connection = http.client.HTTPConnection("127.0.0.1", int(endpoint.rsplit(":", 1)[1]))
        connection.request("POST", "/moto-api/reset-auth", body=b"0")  # from now on, every request is checked
        assert connection.getresponse().status == 200
        yield SigningServer(endpoint, "signed", Credentials(key["AccessKeyId"], key["SecretAccessKey"]))
    finally:
        process.kill()
        process.wait()


def test_a_server_that_checks_signatures_accepts_every_request(
    signing_server: SigningServer, tmp_path: Path
) -> None:
    store = S3LiteStore(
        signing_server.bucket,
        "signed runs/ü",
        endpoint_url=signing_server.endpoint,
        credentials=signing_server.credentials,
        multipart_threshold=PART,
        part_size=PART,
        page_size=2,
    )
    small, large = b"metrics", os.urandom(PART + 1)
    store.put_bytes("j/r/outputs/a b+c.json", small)
    store.put_stream("j/r/outputs/model.keras", io.BytesIO(large))
    store.put_bytes("j/r/logs/attempt-1.log", b"log")
    assert store.get_bytes("j/r/outputs/a b+c.json") == small
    assert store.download("j/r/outputs/model.keras", tmp_path / "m") == digest_of(large)
    assert store.exists("j/r/logs/attempt-1.log")
    assert [item.key for item in store.list("j")] == [  # two pages: continuation tokens are signed too
        "j/r/logs/attempt-1.log",
        "j/r/outputs/a b+c.json",
        "j/r/outputs/model.keras",
    ]
    store.delete(["j/r/outputs/a b+c.json", "j/r/logs/attempt-1.log"])
    assert [item.key for item in store.list("j")] == ["j/r/outputs/model.keras"]


def test_a_wrong_secret_is_access_denied_with_the_credentials_hint(signing_server: SigningServer) -> None:
    wrong = Credentials(signing_server.credentials.access_key, "not the secret")
    store = S3LiteStore(signing_server.bucket, endpoint_url=signing_server.endpoint, credentials=wrong)
    with pytest.raises(StoreError, match="access denied") as info:
        store.put_bytes("a", b"x")
    assert "SignatureDoesNotMatch" in str(info.value) or "signature" in str(info.value).lower()
    assert info.value.hint == CREDENTIALS_HINT


# --- open_store -----------------------------------------------------------------------------------


def test_open_store_uses_s3lite_where_boto3_cannot_be_imported(
    aws_env: str, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 raises ImportError
    store = open_store(f"s3://{bucket}/runs/")
    assert isinstance(store, S3LiteStore)
    assert (store.bucket, store.prefix, store.url) == (bucket, "runs", f"s3://{bucket}/runs")
    store.put_bytes("j/r/a", b"works")
    assert store.get_bytes("j/r/a") == b"works"
