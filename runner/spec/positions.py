"""Where things stand in a manifest file: positions, the source map of a read manifest, paths in words.

A path is a value's place in the manifest's data, keys and list indexes from the top
(``("spec", "inputs", 0, "name")``); ``dotted`` writes it as the messages show it (``spec.inputs[0].name``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

PathKey = tuple[str | int, ...]


@dataclass(frozen=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


@dataclass
class SourceMap:
    """Where each value, and each mapping key, stands in the file, and how scalars were written."""

    values: dict[PathKey, Position] = field(default_factory=dict)
    keys: dict[PathKey, Position] = field(default_factory=dict)
    texts: dict[PathKey, str] = field(default_factory=dict)
    collections: set[PathKey] = field(default_factory=set)  # paths whose value is a mapping or list

    def locate(self, path: PathKey, *, key: bool = False) -> Position:
        """The position of path (of its key when asked), or of its nearest ancestor in the file."""
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            if key and end == len(path) and prefix in self.keys:
                return self.keys[prefix]
            if prefix in self.values:
                return self.values[prefix]
        return Position(1, 1)

    def known(self, path: PathKey) -> bool:
        return path in self.values or path in self.keys


# Problems found while reading: the path they concern, where in the file, and the message.
Found = list[tuple[PathKey, Position, str]]


class FatalProblem(Exception):
    """A problem that ends reading the manifest: the only one reported."""

    def __init__(self, position: Position, message: str) -> None:
        super().__init__(message)
        self.position = position
        self.message = message


def offset_position(text: str, offset: int) -> Position:
    """The line and column of the character at offset in text."""
    line_start = text.rfind("\n", 0, offset) + 1
    return Position(text.count("\n", 0, offset) + 1, offset - line_start + 1)


def node_position(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")
# The longest odd key quoted in a message. A file that is no manifest (a password file, a key) reads
# as YAML keys made of its lines: those are never echoed whole, only named by their length.
MAX_SHOWN_ODD_KEY = 20
MAX_SHOWN_KEY = 60


def dotted(path: PathKey) -> str:
    """The path as messages show it: ``spec.inputs[0].name``, short odd keys quoted (``env['A B']``),
    longer ones only by their length (``[<a key of 98 characters>]``)."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif len(part) > MAX_SHOWN_KEY or (not _PLAIN_KEY.fullmatch(part) and len(part) > MAX_SHOWN_ODD_KEY):
            text += f"[<a key of {len(part)} characters>]"
        elif not _PLAIN_KEY.fullmatch(part):
            text += f"[{part!r}]"
        else:
            text += f".{part}" if text else part
    return text


def escape(text: str) -> str:
    """text inside double quotes in YAML."""
    return text.replace("\\", "\\\\").replace('"', '\\"')
