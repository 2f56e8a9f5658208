"""Who may read the dashboard (pure decisions; app.py applies them).

Bound to a loopback address it answers this machine only, and only to requests naming a loopback host
(a web page elsewhere cannot reach it through DNS rebinding). Bound anywhere else it needs a token,
printed at start: given once as ?token=..., it is kept in a cookie (HttpOnly, SameSite=Strict), or sent
as `Authorization: Bearer ...` by scripts.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Mapping

COOKIE = "runner_ui_token"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")


def is_loopback(host: str) -> bool:
    if host.strip("[]") in ("localhost", *LOOPBACK_NAMES):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    return secrets.token_urlsafe(24)


def token_given(
    query: Mapping[str, str], cookies: Mapping[str, str], headers: Mapping[str, str]
) -> str | None:
    """The token a request carries: ?token=, the cookie, or a bearer header."""
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return query.get("token") or cookies.get(COOKIE)


def token_matches(expected: str, given: str | None) -> bool:
    return given is not None and secrets.compare_digest(expected.encode(), given.encode())
