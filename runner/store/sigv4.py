"""AWS Signature Version 4 for S3 requests, header style: pure functions, standard library only.

The steps are AWS's own (docs.aws.amazon.com, "Create a signed AWS API request"):
1. a canonical request: method, URI-encoded path, sorted query, the signed headers (lowercase names,
   trimmed values, sorted), their names, and the hex sha256 of the payload;
2. a string to sign: the algorithm, the time, the credential scope (date/region/service/aws4_request)
   and the hex sha256 of the canonical request;
3. a signing key: HMAC-SHA256 chained over the date, region, service and "aws4_request", starting
   from "AWS4" + the secret key;
4. the Authorization header: the hex HMAC of the string to sign under that key.

S3 differs from other services in two ways this module follows: the path is encoded once (not
twice), and every request carries x-amz-content-sha256, the payload's hash, which S3 checks
against the bytes it receives. The runner always sends the real hash, never UNSIGNED-PAYLOAD.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)


def amz_date(now: datetime) -> str:
    """The request time as x-amz-date wants it: 20150830T123600Z (UTC)."""
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """The key for one day, region and service: HMACs chained from "AWS4" + the secret key."""
    key = ("AWS4" + secret_key).encode("utf-8")
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def encode_path(path: str) -> str:
    """The URI-encoded path: every byte but unreserved characters and '/' as %XX (uppercase)."""
    return quote(path, safe="/~")


def canonical_query(query: Iterable[tuple[str, str]]) -> str:
    """Names and values URI-encoded ('/' too), sorted by name then value, a name without value as 'name='."""
    pairs = sorted((quote(name, safe="~"), quote(value, safe="~")) for name, value in query)
    return "&".join(f"{name}={value}" for name, value in pairs)


def _header_value(value: str) -> str:
    return " ".join(value.split())  # trimmed, runs of spaces made one


def canonical_request(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    payload_hash: str,
) -> tuple[str, str]:
    """The canonical request over every header given, and the signed-headers list (name;name;...).

    path is the encoded path as sent on the request line (see encode_path).
    """
    lowered = sorted((name.lower().strip(), _header_value(value)) for name, value in headers.items())
    signed = ";".join(name for name, _ in lowered)
    lines = [
        method.upper(),
        path or "/",
        canonical_query(query),
        *(f"{name}:{value}" for name, value in lowered),
        "",
        signed,
        payload_hash,
    ]
    return "\n".join(lines), signed


def string_to_sign(timestamp: str, scope: str, canonical: str) -> str:
    return "\n".join([ALGORITHM, timestamp, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()])


def signature(secret_key: str, timestamp: str, region: str, service: str, text: str) -> str:
    key = signing_key(secret_key, timestamp[:8], region, service)
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def sign(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    *,
    payload_hash: str,
    credentials: Credentials,
    region: str,
    now: datetime,
    service: str = "s3",
) -> dict[str, str]:
    """headers (which must hold Host) plus x-amz-date, x-amz-content-sha256, the token and Authorization.

    Every header given is signed; Authorization itself of course is not.
    """
    timestamp = amz_date(now)
    signed_headers = {**headers, "x-amz-date": timestamp, "x-amz-content-sha256": payload_hash}
    if credentials.token:
        signed_headers["x-amz-security-token"] = credentials.token
    scope = f"{timestamp[:8]}/{region}/{service}/aws4_request"
    canonical, names = canonical_request(method, path, list(query), signed_headers, payload_hash)
    text = string_to_sign(timestamp, scope, canonical)
    mac = signature(credentials.secret_key, timestamp, region, service, text)
    authorization = (
        f"{ALGORITHM} Credential={credentials.access_key}/{scope}, SignedHeaders={names}, Signature={mac}"
    )
    return {**signed_headers, "Authorization": authorization}
