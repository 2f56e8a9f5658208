"""s3:// artifact store: objects under a prefix of a bucket, on AWS S3 or an S3-compatible server.

Configuration comes from the environment, as for the AWS CLI: credentials from AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN (or AWS_PROFILE, web identity, instance roles: botocore's
usual chain), the region from AWS_REGION or AWS_DEFAULT_REGION, and an S3-compatible endpoint such as
MinIO from AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL (then with path-style addressing). boto3 is
imported on first use only: the agent imports this package inside job containers, and
`runner --help` stays fast.

Writes. Every object carries the sha256 of its content in its metadata (x-amz-meta-sha256), and
metadata has to be sent before the content, so a source is read twice: once to hash it, then again
while it is uploaded. A seekable source (a regular file, bytes) is rewound for the second read; any
other stream is first spooled to a temporary file (in memory up to the multipart threshold). The
upload itself hashes what it reads and must find the same digest, or the object is deleted and the
write fails ("changed while it was uploaded"). Objects from the multipart threshold (8 MiB) up are
sent in parts, several at a time; every request carries its own SHA256 checksum
(ChecksumAlgorithm="SHA256": x-amz-checksum-sha256 on each PutObject and UploadPart, or a trailer on
HTTPS), which S3 verifies before it accepts the bytes. S3 only makes an object visible when its
PutObject or CompleteMultipartUpload succeeds, and a multipart upload that fails is aborted, so
readers see the whole object or nothing, and no parts are left behind (a lifecycle rule with
AbortIncompleteMultipartUpload still guards against a process killed outright).

Reads verify the sha256 in the metadata, where there is one, before anything is returned or renamed
into place: a mismatch is a StoreError "checksum mismatch".

Deletes (retention) go through DeleteObjects, up to 1000 keys a request, and fail on the first key
S3 reports it could not delete; listings are paginated, so a job with any number of runs is seen whole.

This is the one S3 client: job images carry boto3 for their agent in its own environment (/opt/runner,
runner.images.recipe.AGENT_REQUIREMENTS). The pieces that need no boto3 (the metadata, the verification,
the configuration, the errors and their hints) are in s3common.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

from runner.errors import NotFoundError, RunnerError, StoreError, UnsafePathError
from runner.store.base import CHUNK, Digest, StoredObject, check_key
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

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MULTIPART_THRESHOLD = 8 * MiB
MULTIPART_CHUNK = 8 * MiB
MAX_CONCURRENCY = 4  # parts in flight at once for one object

NO_BOTO3_HINT = (
    "install boto3 where the runner runs (pip install boto3); job images built by the runner have it "
    "in the agent's environment (/opt/runner)"
)


class S3Store:
    """Objects at s3://bucket/prefix/KEY.

    client, when given, is a boto3 S3 client used as it is; otherwise one is made on first use from
    the environment (see the module's docstring), with endpoint_url overriding AWS_ENDPOINT_URL*.
    """

    url: str

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        client: S3Client | None = None,
        max_attempts: int | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        multipart_chunk: int = MULTIPART_CHUNK,
        max_concurrency: int = MAX_CONCURRENCY,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self._location = Location.of(bucket, prefix)
        self.bucket = self._location.bucket
        self.prefix = self._location.prefix
        self.url = self._location.url
        self.endpoint_url = endpoint_url or endpoint_from_environment()
        self._hints = Hints(self.url, self.bucket, self.endpoint_url)
        self.max_attempts = max_attempts if max_attempts is not None else attempts_from_environment()
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.multipart_threshold = multipart_threshold
        self.multipart_chunk = multipart_chunk
        self.max_concurrency = max_concurrency
        self.page_size = page_size
        self._client = client
        self._lock = threading.Lock()

    # -- the boto3 boundary -------------------------------------------------------------------

    @property
    def client(self) -> S3Client:
        """The boto3 S3 client, made on first use (boto3 is imported here, not at import time)."""
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> S3Client:
        try:
            import boto3
            from botocore.config import Config
        except ImportError as error:
            raise StoreError(f"cannot use {self.url}: boto3 is not installed", hint=NO_BOTO3_HINT) from error
        region = region_from_environment()
        if region is None and self.endpoint_url is not None:
            region = DEFAULT_REGION
        config = Config(
            region_name=region,
            # total_max_attempts counts the first try, as AWS_MAX_ATTEMPTS does; botocore's
            # "max_attempts" key counts retries after it
            retries={"total_max_attempts": self.max_attempts, "mode": "standard"},
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            max_pool_connections=max(10, self.max_concurrency * 2),
            s3={"addressing_style": "path"} if self.endpoint_url is not None else {},
        )
        session = boto3.session.Session()  # not the shared default one: sessions are not thread-safe
        return session.client("s3", endpoint_url=self.endpoint_url, config=config)

    @contextlib.contextmanager
    def _errors(self, action: str, key: str | None) -> Iterator[None]:
        """Turn boto errors into runner errors that say what to do; let everything else through."""
        try:
            yield
        except Exception as error:
            translated = self._translate(error, action, key)
            if translated is None:
                raise
            raise translated from error

    def _translate(self, error: Exception, action: str, key: str | None) -> RunnerError | None:
        if isinstance(error, RunnerError):
            return None
        from botocore import exceptions as boto

        where = self.location(key) if key is not None else self.url
        if isinstance(error, boto.ClientError):
            info = error.response.get("Error", {})
            code = str(info.get("Code", ""))
            message = str(info.get("Message", "") or code)
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return self._hints.error(
                code, message, status, action=action, where=where, about_key=key is not None
            )
        if isinstance(error, boto.NoCredentialsError | boto.PartialCredentialsError):
            return StoreError(f"cannot {action} {where}: no AWS credentials found", hint=CREDENTIALS_HINT)
        if isinstance(error, boto.FlexibleChecksumError):
            return StoreError(
                f"cannot {action} {where}: checksum mismatch ({error})",
                hint="the data was damaged on the way or in the store; try again",
            )
        if isinstance(error, boto.ConnectionError | boto.HTTPClientError):  # unreachable, timed out, cut off
            return StoreError(f"cannot {action} {where}: {error}", hint=self._hints.endpoint_hint())
        if isinstance(error, boto.BotoCoreError):
            return StoreError(f"cannot {action} {where}: {error}")
        return None

    # -- keys ------------------------------------------------------------------------------------

    def location(self, key: str) -> str:
        return f"{self.url}/{key}"

    # -- writes ----------------------------------------------------------------------------------

    def put_stream(self, key: str, source: BinaryIO) -> Digest:
        name = self._location.name(key)
        return upload_hashed(
            source, self.multipart_threshold, lambda data, expected: self._upload(key, name, data, expected)
        )

    def put_bytes(self, key: str, data: bytes) -> Digest:
        return self.put_stream(key, io.BytesIO(data))

    def _upload(self, key: str, name: str, source: BinaryIO, expected: Digest) -> None:
        client = self.client  # first: it says so when boto3 is missing
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(
            multipart_threshold=self.multipart_threshold,
            multipart_chunksize=self.multipart_chunk,
            max_concurrency=self.max_concurrency,
            preferred_transfer_client="classic",  # not the CRT: the same behaviour everywhere
        )
        extra = {"ChecksumAlgorithm": "SHA256", "Metadata": {SHA256_METADATA: expected.sha256}}
        reader = _HashingReader(source)
        try:
            with self._errors("write", key):
                client.upload_fileobj(
                    cast(BinaryIO, reader), self.bucket, name, ExtraArgs=extra, Config=config
                )
        except BaseException:
            if reader.failure is not None:  # the source broke: raise what it raised, as FileStore does
                raise reader.failure from None
            raise
        if reader.digest() != expected:
            with contextlib.suppress(Exception):
                client.delete_object(Bucket=self.bucket, Key=name)
            raise source_changed(self.location(key))

    # -- reads -----------------------------------------------------------------------------------

    def get_bytes(self, key: str) -> bytes:
        name = self._location.name(key)
        with self._errors("read", key):
            response = self.client.get_object(Bucket=self.bucket, Key=name)
            with contextlib.closing(response["Body"]) as body:
                data: bytes = body.read()
        expected = Expected(response.get("ContentLength"), response.get("Metadata", {}), self.location(key))
        expected.verify(len(data), hashlib.sha256(data).hexdigest())
        return data

    def download(self, key: str, destination: Path) -> Digest:
        name = self._location.name(key)
        with self._errors("read", key):
            response = self.client.get_object(Bucket=self.bucket, Key=name)
            with contextlib.closing(response["Body"]) as body:
                expected = Expected(
                    response.get("ContentLength"), response.get("Metadata", {}), self.location(key)
                )
                reader = VerifyingReader(body, expected)
                return write_atomically(destination, cast(BinaryIO, reader))

    def list(self, prefix: str) -> list[StoredObject]:
        start = self._location.name(prefix) + "/"
        found: list[StoredObject] = []
        with self._errors("list", prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=start, PaginationConfig={"PageSize": self.page_size}
            )
            for page in pages:
                for item in page.get("Contents", []):
                    key = self._location.relative(str(item["Key"]))
                    try:
                        check_key(key)  # not one of ours: "a//b", "dir/" markers, "../x"
                    except UnsafePathError:
                        continue
                    modified = item.get("LastModified")
                    found.append(
                        StoredObject(
                            key=key,
                            size=int(item["Size"]),
                            modified=modified.timestamp() if modified is not None else None,
                        )
                    )
        return sorted(found, key=lambda item: item.key)

    def exists(self, key: str) -> bool:
        """Whether key is an object (by HEAD, which says no more than 404 for a missing bucket too)."""
        name = self._location.name(key)
        try:
            with self._errors("look up", key):
                self.client.head_object(Bucket=self.bucket, Key=name)
        except NotFoundError:
            return False
        return True

    # -- deletes ---------------------------------------------------------------------------------

    def delete(self, keys: Sequence[str]) -> None:
        """DeleteObjects, DELETE_BATCH keys a request, in order; a key S3 could not delete fails the call.

        Deleting a missing key is no error for S3, as for the other stores.
        """
        names = [self._location.name(key) for key in keys]  # every key checked before anything is deleted
        for start in range(0, len(names), DELETE_BATCH):
            batch = names[start : start + DELETE_BATCH]
            with self._errors("delete", self._location.relative(batch[0])):
                response = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": name} for name in batch], "Quiet": True},
                )
            failed = response.get("Errors", [])
            if failed:
                first = failed[0]
                code = str(first.get("Code", "Error"))
                key = self._location.relative(str(first.get("Key", "")))
                more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
                raise StoreError(
                    f"cannot delete {self.location(key)}{more}: {code}: {first.get('Message') or code}",
                    hint=CREDENTIALS_HINT if code in DENIED_CODES else None,
                )


class _SourceFailed(Exception):
    """Carries a failure of the source out of s3transfer's threads; _upload raises the original."""


class _HashingReader:
    """Hands the source to s3transfer (which reads it in a thread of its own) and hashes what it reads.

    Not seekable on purpose: s3transfer then reads it once, front to back. Reads are filled up to
    the size asked for, since every part but the last must be as long as the chunk size.
    """

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._hash = hashlib.sha256()
        self._size = 0
        self.failure: BaseException | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        chunks: list[bytes] = []
        wanted = size
        try:
            while size < 0 or wanted > 0:
                chunk = self._source.read(CHUNK if size < 0 else wanted)
                if not chunk:
                    break
                chunks.append(chunk)
                wanted -= len(chunk)
        except BaseException as error:  # a KeyboardInterrupt too: it must not kill s3transfer's thread
            self.failure = error
            raise _SourceFailed(str(error)) from error
        data = b"".join(chunks)
        self._hash.update(data)
        self._size += len(data)
        return data

    def digest(self) -> Digest:
        return Digest(size=self._size, sha256=self._hash.hexdigest())
