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

Requests (signing, connections, timeouts, retries with backoff) are runner.store.s3lite_transport's.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, cast
from urllib.parse import unquote_plus
from xml.etree import ElementTree

from runner.errors import NotFoundError, RunnerError, StoreError
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
from runner.store.s3lite_transport import (
    Answer,
    Endpoint,
    Request,
    ResponseBody,
    S3Transport,
    children,
    credentials_from_environment,
    text,
    xml,
)
from runner.store.sigv4 import Credentials

MULTIPART_THRESHOLD = 16 * MiB
PART_SIZE = 16 * MiB
MAX_PARTS = 10_000  # S3's limit for one multipart upload
S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
SHA256_METADATA_HEADER = f"x-amz-meta-{SHA256_METADATA}"


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
        self._hints = Hints(self.url, self.bucket, self.endpoint_url)
        self._transport = S3Transport(
            url=self.url,
            bucket=self.bucket,
            endpoint=self.endpoint,
            region=self.region,
            credentials=self.credentials,
            max_attempts=self.max_attempts,
            hints=self._hints,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            sleep=sleep,
        )

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
        self._transport.call(Request("PUT", name, body=data, headers=headers), "write", key)

    def _multipart(self, key: str, name: str, source: BinaryIO, expected: Digest) -> None:
        part_size = max(self.part_size, -(-expected.size // MAX_PARTS))
        created = self._transport.call(
            Request(
                "POST",
                name,
                (("uploads", ""),),
                headers={SHA256_METADATA_HEADER: expected.sha256, "x-amz-checksum-algorithm": "SHA256"},
                idempotent=False,
            ),
            "write",
            key,
        )
        upload_id = text(xml(created.body), "UploadId")
        if not upload_id:
            raise StoreError(f"cannot write {self.location(key)}: S3 started no multipart upload")
        try:
            parts = self._send_parts(
                key, name, source, upload_id=upload_id, part_size=part_size, expected=expected
            )
            self._complete(key, name, upload_id, parts)
        except BaseException:  # Ctrl-C too: leave no parts behind
            with contextlib.suppress(Exception):
                self._transport.call(Request("DELETE", name, (("uploadId", upload_id),)), "write", key)
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
            answer = self._transport.call(
                Request(
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
        request = Request("POST", name, (("uploadId", upload_id),), body=body, error_in_body=True)
        self._transport.call(request, "write", key)

    # -- reads -----------------------------------------------------------------------------------

    def get_bytes(self, key: str) -> bytes:
        name = self._location.name(key)
        answer = self._transport.call(
            Request("GET", name, headers={"x-amz-checksum-mode": "ENABLED"}), "read", key
        )
        self._expected(answer, key).verify(len(answer.body), hashlib.sha256(answer.body).hexdigest())
        return answer.body

    def download(self, key: str, destination: Path) -> Digest:
        name = self._location.name(key)
        request = Request("GET", name, headers={"x-amz-checksum-mode": "ENABLED"}, stream=True)
        answer = self._transport.call(request, "read", key)
        try:
            assert answer.response is not None
            body = ResponseBody(answer.response, self.location(key), self._hints.endpoint_hint())
            return write_atomically(
                destination, cast(BinaryIO, VerifyingReader(body, self._expected(answer, key)))
            )
        finally:
            answer.close()

    def _expected(self, answer: Answer, key: str) -> Expected:
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
            root = xml(self._transport.call(Request("GET", None, tuple(query)), "list", prefix).body)
            encoded = text(root, "EncodingType") == "url"
            for item in children(root, "Contents"):
                stored = self._stored(item, encoded)
                if stored is not None:
                    found.append(stored)
            token = text(root, "NextContinuationToken")
            if text(root, "IsTruncated") != "true" or not token:
                break
        return sorted(found, key=lambda item: item.key)

    def _stored(self, item: ElementTree.Element, encoded: bool) -> StoredObject | None:
        name = text(item, "Key") or ""
        key = self._location.relative(unquote_plus(name) if encoded else name)
        try:
            self._location.name(key)  # not one of ours: "a//b", "dir/" markers, "../x"
        except RunnerError:
            return None
        modified = text(item, "LastModified")
        return StoredObject(
            key=key,
            size=int(text(item, "Size") or 0),
            modified=datetime.fromisoformat(modified).timestamp() if modified else None,
        )

    def exists(self, key: str) -> bool:
        """Whether key is an object (by HEAD, which says no more than 404 for a missing bucket too)."""
        name = self._location.name(key)
        try:
            self._transport.call(Request("HEAD", name), "look up", key)
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
            answer = self._transport.call(
                Request("POST", None, (("delete", ""),), body=body, headers=headers),
                "delete",
                self._location.relative(batch[0]),
            )
            failed = children(xml(answer.body), "Error")
            if failed:
                code = text(failed[0], "Code") or "Error"
                key = self._location.relative(text(failed[0], "Key") or "")
                more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
                message = text(failed[0], "Message") or code
                raise StoreError(
                    f"cannot delete {self.location(key)}{more}: {code}: {message}",
                    hint=CREDENTIALS_HINT if code in DENIED_CODES else None,
                )


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
