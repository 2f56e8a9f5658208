"""The names a manifest holds, checked as Kubernetes checks them: DNS labels and subdomains, label keys
and values, environment variable names, and strings a C program can take."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

# Used with fullmatch: "$" would also match before a trailing newline, letting "mnist\n" through.
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
LABEL_NAME = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
INPUT_NAME = re.compile(r"[a-z]([-a-z0-9_]*[a-z0-9])?")


def _check_dns_name(value: str, what: str, max_length: int, *, subdomain: bool) -> str:
    if len(value) > max_length:
        raise ValueError(f"{what} {value!r} is {len(value)} characters; at most {max_length} are allowed")
    pattern, characters, kind = (
        (DNS_SUBDOMAIN, "'-' and '.'", "subdomain") if subdomain else (DNS_LABEL, "and '-'", "label")
    )
    if not pattern.fullmatch(value):
        raise ValueError(
            f"{what} {value!r} must be lower-case letters, digits{',' if subdomain else ''} {characters}, "
            f"starting and ending with a letter or digit (Kubernetes DNS-1123 {kind})"
        )
    return value


def check_dns_label(value: str, what: str, max_length: int = 63) -> str:
    return _check_dns_name(value, what, max_length, subdomain=False)


def check_label_key(key: str) -> str:
    """A Kubernetes label or annotation key: an optional DNS-subdomain prefix and '/', then a name."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not DNS_SUBDOMAIN.fullmatch(prefix)):
        raise ValueError(f"the key's prefix {prefix!r} must be a lower-case DNS subdomain like example.com")
    if not name or len(name) > 63 or not LABEL_NAME.fullmatch(name):
        raise ValueError(
            "a key must be 1-63 letters, digits, '-', '_' or '.' (after an optional prefix and '/'), "
            "starting and ending with a letter or digit"
        )
    return key


def check_label_value(value: str) -> str:
    if len(value) > 63 or not LABEL_NAME.fullmatch(value):
        raise ValueError(
            f"label value {value!r} must be at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return value


def check_dns_subdomain(value: str, what: str, max_length: int = 253) -> str:
    return _check_dns_name(value, what, max_length, subdomain=True)


def check_env_name(key: str) -> str:
    if not ENV_NAME.fullmatch(key):
        raise ValueError("a variable name must be letters, digits and '_', not starting with a digit")
    if key.startswith("RUNNER_"):
        raise ValueError("names starting with RUNNER_ are reserved for the runner; rename the variable")
    return key


LabelKey = Annotated[str, AfterValidator(check_label_key)]
LabelValue = Annotated[str, AfterValidator(check_label_value)]
EnvName = Annotated[str, AfterValidator(check_env_name)]


def check_no_nul(value: str) -> str:
    """A command line argument or an environment value is a C string: a NUL byte would end it."""
    if "\x00" in value:
        raise ValueError(
            "contains a NUL character (\\0), which no command argument or environment variable can hold"
        )
    surrogate = next((c for c in value if "\ud800" <= c <= "\udfff"), None)
    if surrogate is not None:  # only a "\uD800"-style escape makes one: it cannot be encoded for the job
        raise ValueError(f"contains {surrogate!r}, half of a UTF-16 surrogate pair, which is no character")
    return value
