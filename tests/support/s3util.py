"""What the tests of the S3 store (boto3's client, against moto's server) look at and build with."""

from __future__ import annotations

import base64
import hashlib
import socket
from typing import TYPE_CHECKING

from runner.store.base import Digest

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MiB = 1024 * 1024
PREFIX = "team/runs"


def digest_of(data: bytes) -> Digest:
    return Digest(size=len(data), sha256=hashlib.sha256(data).hexdigest())


def b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def object_names(s3: S3Client, bucket: str) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def pending_uploads(s3: S3Client, bucket: str) -> list[str]:
    return [upload["Key"] for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
