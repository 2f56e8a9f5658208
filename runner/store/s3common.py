"""The s3:// store's parts that need no boto3: its format, its configuration and its errors.

runner.store.s3 (S3Store, on boto3) is the one S3 client, for the runner and for the agent in job
images alike (their agent has boto3 in its own environment, /opt/runner: runner.images.recipe). It
keeps the sha256 of an object's content in its metadata (x-amz-meta-sha256) and verifies it on every
read, takes its configuration from the variables the AWS CLI reads, and turns S3's error codes into
StoreErrors with hints; those pieces live here, on the standard library, so that they are tested and
imported without botocore.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import BinaryIO, Protocol, cast

from runner.errors import NotFoundError, RunnerError, StoreError, UnsafePathError, UserError
from runner.store.base import Digest, check_key, hash_stream

MiB = 1024 * 1024
MAX_ATTEMPTS = 5  # tries of each request, the first included ("standard" retries: throttling, 5xx, I/O)
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
PAGE_SIZE = 1000  # S3's own maximum for ListObjectsV2
DELETE_BATCH = 1000  # S3's own maximum for DeleteObjects
SHA256_METADATA = "sha256"  # sent as the x-amz-meta-sha256 header
DEFAULT_REGION = "us-east-1"  # what S3-compatible servers expect in signatures unless told otherwise

_SHA256 = re.compile(r"[0-9a-f]{64}")
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]")

MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "403",
        "Forbidden",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "AccountProblem",
    }
)
DIGEST_CODES = frozenset({"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "InvalidChecksum"})
REGION_CODES = frozenset(
    {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException", "301"}
)

CREDENTIALS_HINT = (
    "check the credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN for "
    "temporary ones) or AWS_PROFILE; they need s3:GetObject, s3:PutObject and s3:ListBucket on the bucket, "
    "and s3:DeleteObject when a job has a retention policy"
)


def endpoint_from_environment() -> str | None:
    """The S3-compatible endpoint the AWS CLI would use: AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL."""
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def region_from_environment() -> str | None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def attempts_from_environment() -> int:
    value = os.environ.get("AWS_MAX_ATTEMPTS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else MAX_ATTEMPTS


@dataclass(frozen=True)
class Location:
    """Where a store's objects live: s3://bucket/prefix, checked as both clients accept it."""

    bucket: str
    prefix: str
    url: str

    @classmethod
    def of(cls, bucket: str, prefix: str = "") -> Location:
        if not _BUCKET.fullmatch(bucket):
            raise UserError(
                f"{bucket!r} is not an S3 bucket name",
                hint="bucket names use lowercase letters, digits, '.' and '-': s3://my-bucket/prefix",
            )
        prefix = prefix.strip("/")
        if prefix:
            try:
                check_key(prefix)
            except UnsafePathError as error:
                raise UserError(
                    f"the prefix {prefix!r} of s3://{bucket}: {error.message}",
                    hint="use a prefix such as team/runner",
                ) from None
        return cls(bucket, prefix, f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}")

    def name(self, key: str) -> str:
        """The object name of key: the prefix, then key."""
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def relative(self, name: str) -> str:
        return name[len(self.prefix) + 1 :] if self.prefix else name


@dataclass(frozen=True)
class Hints:
    """What to check when a request fails, given where the store is."""

    url: str
    bucket: str
    endpoint_url: str | None

    def at_endpoint(self) -> str:
        return f" at {self.endpoint_url}" if self.endpoint_url else ""

    def bucket_hint(self) -> str:
        hint = f"check the bucket name in the store URL ({self.url}); create the bucket first"
        if self.endpoint_url:
            return f"{hint}, and that AWS_ENDPOINT_URL ({self.endpoint_url}) is the server that holds it"
        return f"{hint}, and that AWS_REGION is its region"

    def endpoint_hint(self) -> str:
        if self.endpoint_url:
            return (
                f"check that the S3 server at {self.endpoint_url} is up and reachable "
                "(AWS_ENDPOINT_URL or AWS_ENDPOINT_URL_S3 names it)"
            )
        return "check the network, and AWS_REGION; for an S3-compatible server set AWS_ENDPOINT_URL"

    def error(
        self, code: str, message: str, status: int | None, *, action: str, where: str, about_key: bool
    ) -> RunnerError:
        """The runner error for an S3 error response (code from its XML body, or the HTTP status)."""
        if code in MISSING_CODES and about_key:
            return NotFoundError(f"{where} does not exist")
        if code == "NoSuchBucket":
            return StoreError(
                f"cannot {action} {where}: the bucket {self.bucket!r} does not exist{self.at_endpoint()}",
                hint=self.bucket_hint(),
            )
        if code in DENIED_CODES or status == 403:
            return StoreError(f"cannot {action} {where}: access denied ({message})", hint=CREDENTIALS_HINT)
        if code in DIGEST_CODES:
            return StoreError(
                f"cannot {action} {where}: checksum mismatch, S3 refused the bytes it got ({message})",
                hint="the data was damaged on the way; try again",
            )
        if code in REGION_CODES or status == 301:
            return StoreError(
                f"cannot {action} {where}: the bucket is in another region ({message})",
                hint="set AWS_REGION to the bucket's region",
            )
        if code == "InvalidBucketName":
            return StoreError(f"cannot {action} {where}: {message}", hint=self.bucket_hint())
        return StoreError(f"cannot {action} {where}: {code}: {message}")


@dataclass(frozen=True)
class Expected:
    """What an object's response promises: its length, and its sha256 when a runner store wrote it.

    checksum is S3's own full-object x-amz-checksum-sha256 (base64), used only when the metadata has
    no sha256: objects another tool wrote with a checksum are verified too.
    """

    length: int | None
    metadata: Mapping[str, str]
    where: str
    checksum: str | None = None

    def verify(self, size: int, sha256: str) -> None:
        """Raise StoreError unless what was read matches the length and the sha256 metadata."""
        if self.length is not None and size != self.length:
            raise StoreError(
                f"cannot read {self.where}: got {size} bytes of {self.length}",
                hint="the connection broke off; try again",
            )
        expected = self.metadata.get(SHA256_METADATA)
        if expected is None:
            self._verify_checksum(sha256)
            return
        expected = expected.strip().lower()
        if sha256 != expected:
            shown = expected if _SHA256.fullmatch(expected) else repr(expected)
            raise StoreError(
                f"checksum mismatch: {self.where} has sha256 {sha256}, but its metadata says {shown}",
                hint="the object was changed or damaged after it was written; write it again",
            )

    def _verify_checksum(self, sha256: str) -> None:
        if self.checksum is None or "-" in self.checksum:  # none, or one of a multipart upload's parts
            return
        if base64.b64encode(bytes.fromhex(sha256)).decode() != self.checksum.strip():
            raise StoreError(
                f"checksum mismatch: {self.where} has sha256 {sha256}, but S3's checksum of it is "
                f"{self.checksum} (base64)",
                hint="the object was damaged on the way or in the store; try again",
            )


class Body(Protocol):
    """A response body: botocore's StreamingBody or http.client's HTTPResponse."""

    def read(self, amt: int | None = ..., /) -> bytes: ...


class VerifyingReader:
    """Reads an object's body and, at its end, verifies what it read before saying so."""

    def __init__(self, body: Body, expected: Expected) -> None:
        self._body = body
        self._expected = expected
        self._hash = hashlib.sha256()
        self._size = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._body.read(size if size >= 0 else None)
        if chunk:
            self._hash.update(chunk)
            self._size += len(chunk)
            return chunk
        self._expected.verify(self._size, self._hash.hexdigest())
        return b""


def source_position(source: BinaryIO) -> int | None:
    """Where a seekable source stands now, or None when it cannot be rewound."""
    try:
        if not source.seekable():
            return None
        return source.tell()
    except (AttributeError, OSError, ValueError):
        return None


def upload_hashed(source: BinaryIO, spool_limit: int, upload: Callable[[BinaryIO, Digest], None]) -> Digest:
    """Hash the source, then upload it with the digest it must match: both S3 clients write this way.

    A source that can be rewound is read twice (hash, then upload); any other is spooled while it is
    hashed (in memory up to spool_limit bytes, then in a temporary file) and uploaded from the spool.
    """
    start = source_position(source)
    if start is not None:
        expected = hash_stream(source)
        source.seek(start)
        upload(source, expected)
        return expected
    with tempfile.SpooledTemporaryFile(max_size=spool_limit) as spool:
        expected = hash_stream(source, cast(BinaryIO, spool))
        spool.seek(0)
        upload(cast(BinaryIO, spool), expected)
    return expected


def source_changed(location: str) -> StoreError:
    """A write whose source did not read back as it hashed: nothing of it is kept."""
    return StoreError(
        f"cannot write {location}: the source changed while it was uploaded",
        hint="write it again once nothing else writes to it",
    )
