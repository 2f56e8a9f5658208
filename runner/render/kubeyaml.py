"""Kubernetes objects as the multi-document YAML that ``kubectl apply -f -`` reads.

kubectl reads YAML with go-yaml v2 rules (YAML 1.1-like: ``y``, ``n``, ``on``, ``0o17``, ``1e3`` are
not strings there), PyYAML writes with its own YAML 1.1 rules, and other tools read YAML 1.2. So a
string is written plain only when every one of them reads it back as that same string: a letter
or '/' first (after at most two '-', as in command-line flags), then letters, digits and
``_./:@=+,-``, and no boolean or null word. Everything else is quoted (double quotes, with escapes,
for anything unprintable); multi-line text (the manifest in its ConfigMap) is a literal block where
YAML allows one. Keys keep the order the objects were built in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

_PLAIN = re.compile(r"(--?)?[A-Za-z/][A-Za-z0-9_./:@=+,-]*")
# Booleans and nulls of YAML 1.1 (go-yaml v2, PyYAML) and 1.2, compared case-insensitively.
_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})


class _Dumper(yaml.SafeDumper):
    """SafeDumper with the quoting above; registering here leaves yaml.safe_dump alone."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style: str | None
    if not value.replace("\n", "").isprintable():
        style = '"'  # control characters, NEL, line and paragraph separators: escaped, read alike
    elif "\n" in value:
        style = "|"  # the emitter falls back to double quotes when a block cannot hold value
    elif _PLAIN.fullmatch(value) and value.lower() not in _WORDS:
        style = None
    else:
        style = "'"  # or double quotes, when single ones cannot hold value
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def to_yaml(objects: Iterable[Mapping[str, Any]]) -> str:
    """Each object as one YAML document, each starting with '---'."""
    return yaml.dump_all(
        [dict(obj) for obj in objects],
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        explicit_start=True,
        width=1_000_000,  # no folded lines: values stay on one line, as written
    )
