"""Changes to a manifest given on the command line (`runner submit --set/--env/--gpus/--name`). Pure.

Each becomes an Override: the flag as written, the manifest path it sets and the value. They are applied
to the manifest's data before it is validated, so a bad one is refused like a bad file, with the flag
named instead of a line and column (runner.spec.loader).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml

PathKey = tuple[str | int, ...]


@dataclass(frozen=True)
class Override:
    flag: str  # as given, e.g. "--set spec.retries=3": what a problem with it is reported against
    path: PathKey
    value: Any


def set_override(text: str) -> Override:
    """--set PATH=VALUE: PATH dotted (spec.resources.memory, spec.command.0), VALUE read as YAML (3 is a
    number, [a, b] a list, "3" a string). ValueError for a malformed one."""
    path_text, sep, value_text = text.partition("=")
    parts = path_text.strip().split(".")
    if not sep or not path_text.strip() or any(not part for part in parts):
        raise ValueError(f"{text!r}: expected PATH=VALUE, e.g. spec.retries=3 or spec.resources.memory=8Gi")
    try:
        value = yaml.safe_load(value_text) if value_text.strip() else ""
    except yaml.YAMLError as error:
        raise ValueError(f"{text!r}: the value is not YAML: {getattr(error, 'problem', error)}") from None
    path: PathKey = tuple(int(part) if part.isdigit() else part for part in parts)
    return Override(f"--set {text}", path, value)


def env_override(text: str) -> Override:
    """--env KEY=VALUE: the value as text, as spec.env holds it."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"{text!r}: expected KEY=VALUE, e.g. --env EPOCHS=5")
    return Override(f"--env {text}", ("spec", "env", key), value)


def gpus_overrides(text: str) -> list[Override]:
    """--gpus N[:TYPE]: spec.resources.gpu, and gpuType when a type is given."""
    count, sep, kind = text.partition(":")
    if not count.strip().isdigit() or (sep and not kind.strip()):
        raise ValueError(f"{text!r}: expected N or N:TYPE, e.g. --gpus 1 or --gpus 2:H100")
    flag = f"--gpus {text}"
    found = [Override(flag, ("spec", "resources", "gpu"), int(count))]
    if sep:
        found.append(Override(flag, ("spec", "resources", "gpuType"), kind.strip()))
    return found


def name_override(name: str) -> Override:
    return Override(f"--name {name}", ("metadata", "name"), name)


def apply_overrides(data: Any, overrides: Iterable[Override]) -> tuple[Any, dict[PathKey, Override]]:
    """The data with every override set (mappings made where the path has none), and the paths each
    override made or set, for reporting a problem there against its flag."""
    result = copy.deepcopy(data) if isinstance(data, dict) else {}
    made: dict[PathKey, Override] = {}
    for override in overrides:
        node: Any = result
        for depth, key in enumerate(override.path):
            last = depth == len(override.path) - 1
            here = override.path[: depth + 1]
            if isinstance(node, list) and isinstance(key, int) and key < len(node):
                if last:
                    node[key] = override.value
                    made[here] = override
                else:
                    node = node[key]
                continue
            if not isinstance(node, dict):
                made[override.path[:depth]] = override  # a value, not a mapping, is in the way: said there
                break
            key_text = str(key)
            if last:
                node[key_text] = override.value
                made[(*override.path[:depth], key_text)] = override
            else:
                if key_text not in node or node[key_text] is None:
                    node[key_text] = {}
                    made[(*override.path[:depth], key_text)] = override
                node = node[key_text]
    return result, made


def override_of(path: PathKey, made: dict[PathKey, Override]) -> Override | None:
    """The override a problem at path is about: one that set path or a path above it."""
    for end in range(len(path), 0, -1):
        found = made.get(path[:end])
        if found is not None:
            return found
    return None
