"""Tests for runner.store.s3.S3Store against moto's S3 server on loopback (see conftest.py).

What a store promises (test_file_store.py holds the same for file://): whole objects or nothing,
digests of what was written, verified reads, sorted listings, clear errors. And what S3 adds:
multipart uploads with per-part SHA256 checksums that are aborted when they fail, pagination,
configuration from the AWS environment, and hints when the bucket, the endpoint or the
credentials are wrong.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast
from urllib.parse import urlsplit

import pytest

from runner.errors import NotFoundError, StoreError, UnsafePathError, UserError
from runner.store import Digest, S3Store, StoredObject, open_store
from runner.store.collect import collect_run, read_manifest
from runner.store.s3common import CREDENTIALS_HINT
from tests.support.s3_server import clear_aws_environment
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


@pytest.fixture
def store(bucket: str) -> S3Store:
    return S3Store(bucket, PREFIX)


@dataclass
class Calls:
    """The S3 operations a client sent, in order, with the checksum header of each request."""

    operations: list[str] = field(default_factory=list)
    checksums: list[tuple[str, str | None]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    part_sent: threading.Event = field(default_factory=threading.Event)

    def count(self, operation: str) -> int:
        return self.operations.count(operation)


def watch(store: S3Store) -> Calls:
    calls = Calls()

    def before_send(request: Any, event_name: str, **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        calls.operations.append(operation)
        checksum = request.headers.get("x-amz-checksum-sha256")
        calls.checksums.append((operation, checksum.decode() if isinstance(checksum, bytes) else checksum))
        calls.paths.append(urlsplit(request.url).path)

    def after_part(**_: Any) -> None:
        calls.part_sent.set()

    store.client.meta.events.register("before-send.s3", before_send)
    store.client.meta.events.register("after-call.s3.UploadPart", after_part)
    return calls


class Pipe(io.RawIOBase):
    """A stream that cannot seek (like a pipe), read in small pieces, that may fail after `good` bytes."""

    def __init__(self, data: bytes, error: BaseException | None = None, good: int | None = None) -> None:
        self.inner = io.BytesIO(data)
        self.error = error
        self.good = len(data) if good is None else good

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self.error is not None and self.inner.tell() >= self.good:
            raise self.error
        data = self.inner.read(min(len(buffer), 64 * 1024, self.good - self.inner.tell() or len(buffer)))
        buffer[: len(data)] = data
        return len(data)


class File(io.BytesIO):
    """A seekable source (like a regular file) that calls on_read before every read after `after` bytes."""

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


# --- configuration ------------------------------------------------------------------------------


def test_open_store_routes_s3_urls_without_importing_boto3() -> None:
    code = (
        "import sys; from runner.store import open_store; s = open_store('s3://ml-bucket/a/b/');"
        "print(type(s).__name__, s.bucket, s.prefix, s.url, 'boto3' in sys.modules,"
        " 'botocore' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["S3Store", "ml-bucket", "a/b", "s3://ml-bucket/a/b", "False", "False"]


def test_client_is_configured_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clear_aws_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://minio.example:9000")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://s3.minio.example:9000")  # the S3-specific one wins
    store = S3Store("bkt", "p", max_attempts=7, connect_timeout=3, read_timeout=4)
    meta = store.client.meta
    config: Any = meta.config  # the stubs leave out what botocore's Config takes as keyword arguments
    assert meta.endpoint_url == "http://s3.minio.example:9000"
    assert meta.region_name == "eu-west-1"
    assert config.s3 == {"addressing_style": "path"}
    assert config.retries == {"total_max_attempts": 7, "mode": "standard"}
    assert (config.connect_timeout, config.read_timeout) == (3, 4)
    credentials = cast(Any, store.client)._request_signer._credentials
    assert (credentials.access_key, credentials.secret_key, credentials.token) == ("key", "secret", "token")


def test_aws_itself_uses_the_region_and_virtual_hosted_addressing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clear_aws_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_REGION", "ap-northeast-2")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "9")
    meta = S3Store("bkt").client.meta
    config: Any = meta.config
    assert meta.region_name == "ap-northeast-2"
    assert "amazonaws.com" in meta.endpoint_url
    assert config.s3 in (None, {})
    assert config.retries == {"total_max_attempts": 9, "mode": "standard"}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://", "an s3:// URL names a bucket"),
        ("s3:///prefix", "an s3:// URL names a bucket"),
        ("s3://bad bucket/x", "is not an S3 bucket name"),
        ("s3://bucket/a/../b", "'..', '.' and empty parts are not allowed"),
        ("s3://bucket/a//b", "'..', '.' and empty parts are not allowed"),
    ],
)
def test_bad_s3_urls_are_user_errors(url: str, message: str) -> None:
    with pytest.raises(UserError, match="store URL") as info:
        open_store(url)
    assert message in str(info.value)
    assert info.value.hint


def test_location_and_url(bucket: str) -> None:
    assert S3Store(bucket, "/a/b/").url == f"s3://{bucket}/a/b"
    assert S3Store(bucket, "a/b").location("j/r/x") == f"s3://{bucket}/a/b/j/r/x"
    assert S3Store(bucket).location("j/r/x") == f"s3://{bucket}/j/r/x"


# --- writing and reading ------------------------------------------------------------------------


def test_bytes_round_trip_with_the_digest_in_the_metadata(store: S3Store, s3: S3Client, bucket: str) -> None:
    data = b'{"accuracy": 0.98}\n'
    assert store.put_bytes("mnist/r1/outputs/metrics.json", data) == digest_of(data)
    assert store.get_bytes("mnist/r1/outputs/metrics.json") == data
    head = s3.head_object(
        Bucket=bucket, Key=f"{PREFIX}/mnist/r1/outputs/metrics.json", ChecksumMode="ENABLED"
    )
    assert head["Metadata"] == {"sha256": hashlib.sha256(data).hexdigest()}
    assert head["ChecksumSHA256"] == b64_sha256(data)  # sent with the object: S3 checked it
    assert object_names(s3, bucket) == [f"{PREFIX}/mnist/r1/outputs/metrics.json"]


def test_streams_round_trip(store: S3Store, tmp_path: Path) -> None:
    data = os.urandom(3 * MiB + 17)
    assert store.put_stream("j/r/pipe.bin", cast(BinaryIO, Pipe(data))) == digest_of(data)
    source = io.BytesIO(b"HEADER" + data)
    source.seek(6)  # a stream is read from where it stands
    assert store.put_stream("j/r/file.bin", source) == digest_of(data)
    for key in ("j/r/pipe.bin", "j/r/file.bin"):
        assert store.download(key, tmp_path / key) == digest_of(data)
        assert (tmp_path / key).read_bytes() == data


def test_empty_object(store: S3Store, tmp_path: Path) -> None:
    assert store.put_bytes("j/r/empty", b"") == digest_of(b"")
    assert store.get_bytes("j/r/empty") == b""
    assert store.download("j/r/empty", tmp_path / "empty") == digest_of(b"")


def test_put_replaces_an_existing_object(store: S3Store) -> None:
    store.put_bytes("j/r/metrics.json", b'{"loss": 1}')
    store.put_bytes("j/r/metrics.json", b'{"loss": 0.5}')
    assert store.get_bytes("j/r/metrics.json") == b'{"loss": 0.5}'
    assert store.list("j") == [StoredObject("j/r/metrics.json", 13)]


@pytest.mark.parametrize("source", ["file", "pipe"])
def test_a_20_mib_object_goes_up_in_checksummed_parts(
    store: S3Store, s3: S3Client, bucket: str, tmp_path: Path, source: str
) -> None:
    data = os.urandom(20 * MiB)
    calls = watch(store)
    stream = io.BytesIO(data) if source == "file" else Pipe(data)
    assert store.put_stream("j/r/model.keras", cast(BinaryIO, stream)) == digest_of(data)
    assert calls.operations == ["CreateMultipartUpload", *["UploadPart"] * 3, "CompleteMultipartUpload"]
    parts = [data[: 8 * MiB], data[8 * MiB : 16 * MiB], data[16 * MiB :]]
    sent = sorted(str(checksum) for operation, checksum in calls.checksums if operation == "UploadPart")
    assert sent == sorted(b64_sha256(part) for part in parts)  # every part carries its own SHA256
    head = s3.head_object(Bucket=bucket, Key=f"{PREFIX}/j/r/model.keras")
    assert head["ContentLength"] == 20 * MiB
    assert head["Metadata"] == {"sha256": hashlib.sha256(data).hexdigest()}
    assert store.download("j/r/model.keras", tmp_path / "model.keras") == digest_of(data)
    assert (tmp_path / "model.keras").read_bytes() == data
    assert pending_uploads(s3, bucket) == []


def test_a_small_object_is_one_put_with_its_checksum(store: S3Store) -> None:
    calls = watch(store)
    store.put_bytes("j/r/a", b"hello")
    assert calls.checksums == [("PutObject", b64_sha256(b"hello"))]


def test_a_source_failing_before_the_upload_leaves_nothing_and_a_retry_succeeds(
    store: S3Store, s3: S3Client, bucket: str
) -> None:
    data = os.urandom(12 * MiB)
    error = OSError(5, "Input/output error")
    with pytest.raises(OSError) as info:
        store.put_stream("j/r/model.h5", cast(BinaryIO, Pipe(data, error, good=6 * MiB)))
    assert info.value is error  # the source's own error, as the file store raises it
    assert object_names(s3, bucket) == []
    assert pending_uploads(s3, bucket) == []
    assert store.put_stream("j/r/model.h5", cast(BinaryIO, Pipe(data))) == digest_of(data)
    assert store.get_bytes("j/r/model.h5") == data


@pytest.mark.parametrize("error", [OSError(5, "Input/output error"), KeyboardInterrupt()])
def test_an_upload_failing_halfway_is_aborted_and_a_retry_succeeds(
    store: S3Store, s3: S3Client, bucket: str, error: BaseException
) -> None:
    """The source breaks while its parts are going up: the multipart upload is aborted, not left."""
    store.put_bytes("j/r/model.h5", b"old model")
    data = os.urandom(20 * MiB)
    seen: list[bytes] = []

    def fail() -> None:
        assert calls.part_sent.wait(30), "no part was uploaded"
        seen.append(store.get_bytes("j/r/model.h5"))  # readers meanwhile see the old object whole
        raise error

    calls = watch(store)
    with pytest.raises(type(error)) as info:  # breaks on reading the third part, the first one is up
        store.put_stream("j/r/model.h5", File(data, after=20 * MiB + 10 * MiB, on_read=fail))
    assert info.value is error
    assert calls.operations[0] == "CreateMultipartUpload"
    assert "UploadPart" in calls.operations
    assert calls.operations[-1] == "AbortMultipartUpload"
    assert "CompleteMultipartUpload" not in calls.operations
    assert seen == [b"old model"]
    assert pending_uploads(s3, bucket) == []
    assert store.get_bytes("j/r/model.h5") == b"old model"

    assert store.put_stream("j/r/model.h5", io.BytesIO(data)) == digest_of(data)
    assert store.get_bytes("j/r/model.h5") == data
    assert pending_uploads(s3, bucket) == []


def test_ctrl_c_during_an_upload_aborts_it(store: S3Store, s3: S3Client, bucket: str) -> None:
    """SIGINT reaches the main thread while s3transfer's threads send the parts."""
    # Python's own Ctrl-C handler, whatever an earlier test in this process left installed
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _interrupt_an_upload(store, s3, bucket)
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupt_an_upload(store: S3Store, s3: S3Client, bucket: str) -> None:
    data = os.urandom(24 * MiB)
    interrupted = threading.Event()
    calls = watch(store)

    def interrupt() -> None:
        if interrupted.is_set():
            # the parts still being read wait, so the upload cannot end before the main thread, slowed
            # by a loaded machine, has taken the signal
            time.sleep(0.2)
            return
        assert calls.part_sent.wait(30), "no part was uploaded"
        interrupted.set()
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        store.put_stream("j/r/model.h5", File(data, after=24 * MiB + 12 * MiB, on_read=interrupt))
    assert interrupted.is_set()
    assert calls.operations[-1] == "AbortMultipartUpload"
    assert object_names(s3, bucket) == []
    assert pending_uploads(s3, bucket) == []


def test_a_source_changing_during_the_upload_is_refused(store: S3Store, s3: S3Client, bucket: str) -> None:
    """Hashed once for the metadata, read again for the upload: a job still writing is caught."""
    source = File(b"a" * 1000, after=1000, on_read=lambda: None)

    def change() -> None:
        position = source.tell()
        source.seek(500)
        source.write(b"CHANGED")
        source.seek(position)

    source.on_read = change
    with pytest.raises(StoreError, match="the source changed while it was uploaded"):
        store.put_stream("j/r/log", source)
    assert object_names(s3, bucket) == []


# --- reading ------------------------------------------------------------------------------------


def test_download_writes_atomically_and_returns_the_digest(store: S3Store, tmp_path: Path) -> None:
    data = os.urandom(MiB)
    store.put_bytes("j/r/outputs/model.onnx", data)
    target = tmp_path / "deep" / "model.onnx"
    assert store.download("j/r/outputs/model.onnx", target) == digest_of(data)
    assert target.read_bytes() == data
    assert sorted(path.name for path in target.parent.iterdir()) == ["model.onnx"]


def test_a_changed_object_is_a_checksum_mismatch(
    store: S3Store, s3: S3Client, bucket: str, tmp_path: Path
) -> None:
    data = b"the real model" * 1000
    store.put_bytes("j/r/model.keras", data)
    name = f"{PREFIX}/j/r/model.keras"
    metadata = s3.head_object(Bucket=bucket, Key=name)["Metadata"]
    s3.put_object(Bucket=bucket, Key=name, Body=b"a forged model" * 1000, Metadata=metadata)
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


def test_objects_written_by_other_tools_are_read_without_a_digest_to_check(
    store: S3Store, s3: S3Client, bucket: str, tmp_path: Path
) -> None:
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/j/r/uploaded-by-hand.txt", Body=b"hi")
    assert store.get_bytes("j/r/uploaded-by-hand.txt") == b"hi"
    assert store.download("j/r/uploaded-by-hand.txt", tmp_path / "x") == digest_of(b"hi")


def test_missing_keys_are_not_found(store: S3Store, tmp_path: Path) -> None:
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
def test_unsafe_keys_are_refused_before_any_request(store: S3Store, key: str, tmp_path: Path) -> None:
    calls = watch(store)
    for action in (
        lambda: store.put_bytes(key, b"x"),
        lambda: store.get_bytes(key),
        lambda: store.download(key, tmp_path / "x"),
        lambda: store.list(key),
        lambda: store.exists(key),
    ):
        with pytest.raises(UnsafePathError):
            action()
    assert calls.operations == []


# --- listing ------------------------------------------------------------------------------------


def test_list_is_sorted_relative_to_the_root_and_stays_under_the_prefix(
    store: S3Store, s3: S3Client, bucket: str
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


def test_list_follows_pages(bucket: str, s3: S3Client) -> None:
    store = S3Store(bucket, PREFIX, page_size=7)
    keys = [f"j/r/outputs/{index:03d}" for index in range(25)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=bucket, Key=f"{PREFIX}/{key}", Body=b"x"), keys))
    calls = watch(store)
    assert store.list("j") == [StoredObject(key, 1) for key in keys]
    assert calls.operations == ["ListObjectsV2"] * 4  # 7 + 7 + 7 + 4


def test_list_of_more_than_1000_objects(store: S3Store, s3: S3Client, bucket: str) -> None:
    keys = [f"j/r/logs/{index:04d}.log" for index in range(1001)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=bucket, Key=f"{PREFIX}/{key}", Body=b""), keys))
    calls = watch(store)
    assert [item.key for item in store.list("j/r")] == keys
    assert calls.count("ListObjectsV2") == 2


# --- collecting a run ---------------------------------------------------------------------------


def test_collect_run_into_s3_then_read_the_manifest_back(
    store: S3Store, s3: S3Client, bucket: str, tmp_path: Path
) -> None:
    outputs, logs = tmp_path / "outputs", tmp_path / "logs"
    (outputs / "saved_model" / "variables").mkdir(parents=True)
    logs.mkdir()
    files = {
        "outputs/model.keras": os.urandom(9 * MiB),  # above the multipart threshold
        "outputs/metrics.json": json.dumps({"accuracy": 0.97}).encode(),
        "outputs/saved_model/saved_model.pb": os.urandom(1000),
        "outputs/saved_model/variables/variables.index": b"",
        "logs/attempt-1.log": b"epoch 1/5\nepoch 2/5\n",
    }
    for path, data in files.items():
        (tmp_path / path).write_bytes(data)
    calls = watch(store)

    collection = collect_run(
        store,
        job="mnist",
        run_id="r-1",
        manifest_text="kind: Job\n",
        summary={"state": "succeeded"},
        logs_dir=logs,
        outputs_dir=outputs,
    )

    written = [path for op, path in zip(calls.operations, calls.paths, strict=True) if op == "PutObject"]
    completed = calls.count("CompleteMultipartUpload")
    assert collection.refused == []
    entries = read_manifest(store, "mnist", "r-1")
    assert entries is not None
    assert sorted(entry.path for entry in entries) == sorted([*files, "job.yaml", "run.json"])
    for entry in entries:
        target = tmp_path / "back" / entry.path
        assert store.download(f"mnist/r-1/{entry.path}", target) == Digest(entry.size, entry.sha256)
        if entry.path in files:
            assert digest_of(files[entry.path]) == Digest(entry.size, entry.sha256)
        head = s3.head_object(Bucket=bucket, Key=f"{PREFIX}/mnist/r-1/{entry.path}")
        assert head["Metadata"]["sha256"] == entry.sha256
    assert completed == 1  # model.keras
    assert len(written) + completed == len(entries) + 1
    assert written[-1] == f"/{bucket}/{PREFIX}/mnist/r-1/MANIFEST.json"  # written last
    assert sorted(item.key for item in store.list("mnist/r-1")) == sorted(
        f"mnist/r-1/{path}" for path in [*files, "job.yaml", "run.json", "MANIFEST.json"]
    )
    assert pending_uploads(s3, bucket) == []


def test_read_manifest_of_an_uncollected_run_is_none(store: S3Store) -> None:
    assert read_manifest(store, "mnist", "r-never") is None


# --- errors -------------------------------------------------------------------------------------


def test_a_missing_bucket_is_a_store_error_naming_it(aws_env: str, tmp_path: Path) -> None:
    store = S3Store("no-such-bucket-here", PREFIX)
    for action in (
        lambda: store.put_bytes("j/r/a", b"x"),
        lambda: store.put_stream("j/r/a", io.BytesIO(os.urandom(9 * MiB))),
        lambda: store.get_bytes("j/r/a"),
        lambda: store.download("j/r/a", tmp_path / "a"),
        lambda: store.list("j"),
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
    aws_env: str, monkeypatch: pytest.MonkeyPatch, silent_endpoint: str, kind: str
) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}" if kind == "refused" else silent_endpoint
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    store = S3Store("bkt", PREFIX, max_attempts=1, connect_timeout=0.5, read_timeout=0.5)
    for action in (lambda: store.put_bytes("j/r/a", b"x"), lambda: store.get_bytes("j/r/a")):
        with pytest.raises(StoreError, match=r"cannot (write|read) s3://bkt/team/runs/j/r/a") as info:
            action()
        assert info.value.hint is not None
        assert endpoint in info.value.hint
        assert "AWS_ENDPOINT_URL" in info.value.hint


class Denying(BaseHTTPRequestHandler):
    """An S3 endpoint that refuses every request as S3 does for keys it does not accept."""

    protocol_version = "HTTP/1.1"  # answers "Expect: 100-continue" at once

    def answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b"<Error><Code>InvalidAccessKeyId</Code><Message>The key does not exist.</Message></Error>"
        self.send_response(403)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def denying_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Denying)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_access_denied_is_a_store_error_about_credentials(
    aws_env: str, monkeypatch: pytest.MonkeyPatch, denying_endpoint: str
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", denying_endpoint)
    store = S3Store("bkt", PREFIX, max_attempts=1)
    for action in (
        lambda: store.put_bytes("j/r/a", b"x"),
        lambda: store.get_bytes("j/r/a"),
        lambda: store.list("j"),
        lambda: store.exists("j/r/a"),
    ):
        with pytest.raises(StoreError, match="access denied") as info:
            action()
        assert info.value.hint == CREDENTIALS_HINT


def test_no_credentials_is_a_store_error_about_credentials(
    aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StoreError, match="no AWS credentials found") as info:
        S3Store("bkt", PREFIX, max_attempts=1).put_bytes("j/r/a", b"x")
    assert info.value.hint == CREDENTIALS_HINT


def test_without_boto3_the_one_client_says_so(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3 is the one S3 client (job images carry it for the agent): without it, a clear error."""
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 raises ImportError
    assert isinstance(open_store("s3://bkt/runs"), S3Store), "opening imports nothing"
    with pytest.raises(StoreError, match="boto3 is not installed") as info:
        S3Store("bkt", "runs").put_bytes("j/r/a", b"x")
    assert info.value.hint is not None and "pip install boto3" in info.value.hint
