"""Manifest YAML composed into nodes, which carry their positions, and turned into plain data by hand.

``read_yaml`` returns the data, the SourceMap of where each value and key stands, the problems found
with single keys or values (all of them, so that a file's mistakes are reported at once) and the
paths that could not be read. Duplicate keys, several documents, unsupported tags and alias bombs are
refused here, before validation; only limits that make further reading pointless stop it
(FatalProblem).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import yaml

from runner.spec.positions import (
    FatalProblem,
    Found,
    PathKey,
    Position,
    SourceMap,
    dotted,
    escape,
    node_position,
    offset_position,
)
from runner.spec.yamlwords import plain_words

MAX_NODES = 100_000  # values after aliases are expanded: far more than any real manifest
MAX_DEPTH = 64  # mappings and lists nested this deep are no manifest (or a recursive alias)


def read_yaml(text: str) -> tuple[Any, SourceMap, Found, set[PathKey]]:
    """The manifest's data, where each part stands, the problems found, and the paths that are broken."""
    try:
        documents = list(_first_two(yaml.compose_all(text, Loader=yaml.SafeLoader)))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1)
        said = plain_words(
            error.problem or "invalid YAML", error.context or "", error.problem_mark, error.context_mark, text
        )
        raise FatalProblem(where, said) from None
    except yaml.reader.ReaderError as error:
        character = chr(error.character) if isinstance(error.character, int) else str(error.character)
        raise FatalProblem(
            offset_position(text, error.position),
            f"the character {character!r} (U+{ord(character[:1] or ' '):04X}) cannot appear in a YAML "
            "file; remove it",
        ) from None
    except yaml.YAMLError as error:
        raise FatalProblem(Position(1, 1), f"YAML error: {error}") from None
    except RecursionError:
        raise FatalProblem(
            Position(1, 1), f"lists or mappings are nested too deeply (at most {MAX_DEPTH} levels)"
        ) from None
    reader = _NodeReader()
    data = reader.read(_the_manifest(documents), (), 0)
    return data, reader.source, reader.problems, reader.broken


def _the_manifest(documents: list[yaml.Node | None]) -> yaml.MappingNode:
    """The one document with something in it, which must be a mapping."""
    found = [doc for doc in documents if doc is not None and not _empty(doc)]
    if not found:
        raise FatalProblem(
            Position(1, 1), "the file is empty; expected a manifest with apiVersion, kind, metadata and spec"
        )
    if len(found) > 1:
        raise FatalProblem(
            node_position(found[1]),
            "expected one manifest, found a second YAML document; put each job in its own file",
        )
    root = found[0]
    if not isinstance(root, yaml.MappingNode):
        # never an excerpt: the file may be anything (a token, a key), not a manifest
        got = "a list" if isinstance(root, yaml.SequenceNode) else "a single value (text that is no manifest)"
        raise FatalProblem(
            node_position(root),
            f"expected a mapping with apiVersion, kind, metadata and spec at the top, got {got}",
        )
    return root


def _empty(document: yaml.Node | None) -> bool:
    """A document with nothing in it (a lone or trailing ``---``) composes as an empty null scalar."""
    return document is None or (
        isinstance(document, yaml.ScalarNode)
        and document.tag == "tag:yaml.org,2002:null"
        and document.value == ""
    )


def _first_two(documents: Iterator[yaml.Node | None]) -> Iterator[yaml.Node | None]:
    """Stop composing after a second non-empty document: the rest cannot matter."""
    found = 0
    for document in documents:
        yield document
        found += not _empty(document)
        if found == 2:
            return


_MERGE_TAG = "tag:yaml.org,2002:merge"
_PLAIN_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})

# Values that are text however they are written: `env: {VERSION: 1.10}` means "1.10", not "1.1".
_TEXT_PATHS: tuple[tuple[str | type, ...], ...] = (("spec", "env", str), ("spec", "command", int))


def _is_text_path(path: PathKey) -> bool:
    return any(
        len(path) == len(pattern)
        and all(
            part == want or (isinstance(want, type) and type(part) is want)
            for part, want in zip(path, pattern, strict=True)
        )
        for pattern in _TEXT_PATHS
    )


_TAG_NAMES = {
    "tag:yaml.org,2002:timestamp": "a date",
    "tag:yaml.org,2002:int": "an integer",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:bool": "true or false",
    "tag:yaml.org,2002:binary": "base64 data",
}


class _Skip(Exception):
    """A value that could not be read; the problem is recorded and its key is left out."""


class _NodeReader:
    """Turns composed YAML nodes into plain data while recording positions and problems.

    Problems with single keys or values are collected (so that all of a file's mistakes are reported
    at once); only limits that make further reading pointless stop it.
    """

    def __init__(self) -> None:
        self.source = SourceMap()
        self.problems: Found = []
        self.broken: set[PathKey] = set()  # values that could not be read: no further complaints there
        self.nodes = 0
        self.constructor = yaml.SafeLoader("")

    def problem(self, path: PathKey, node: yaml.Node, message: str) -> None:
        self.problems.append((path, node_position(node), message))

    def read(self, node: yaml.Node, path: PathKey, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise FatalProblem(
                node_position(node),
                f"more than {MAX_NODES} values, counting each use of an alias; a manifest has far fewer "
                "(is this an alias bomb?)",
            )
        if depth > MAX_DEPTH:
            raise FatalProblem(
                node_position(node),
                f"lists or mappings are nested more than {MAX_DEPTH} levels deep (a recursive alias?)",
            )
        self.source.values.setdefault(path, node_position(node))
        if not isinstance(node, yaml.ScalarNode) and node.tag not in _PLAIN_TAGS:
            # !!python/object/apply and friends: never constructed, and not quietly read as plain data.
            self.problem(
                path, node, f"{dotted(path) or 'manifest'}: the YAML tag {node.tag!r} is not supported"
            )
            raise _Skip
        if not isinstance(node, yaml.ScalarNode):
            self.source.collections.add(path)
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            self._mapping(node, path, depth, result)
            return result
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                try:
                    items.append(self.read(item, (*path, index), depth + 1))
                except _Skip:
                    self.broken.add((*path, index))
                    items.append(None)
            return items
        return self._scalar(node, path)

    def _scalar(self, node: yaml.Node, path: PathKey) -> Any:
        try:
            value = self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as error:
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            if "could not determine a constructor" in problem:
                self.problem(
                    path, node, f"{dotted(path) or 'manifest'}: the YAML tag {node.tag!r} is not supported"
                )
                raise _Skip from None
            self.problem(path, node, f"{dotted(path) or 'manifest'}: cannot read the value: {problem}")
            raise _Skip from None
        except (ValueError, TypeError, OverflowError) as error:
            # e.g. a date that does not exist (2024-13-45), or an integer with thousands of digits
            shown = node.value if len(node.value) <= 40 else node.value[:37] + "..."
            what = _TAG_NAMES.get(node.tag, f"a {node.tag.rsplit(':', 1)[-1]}")
            reason = "it has too many digits" if "digits" in str(error) else str(error)
            self.problem(
                path, node, f"{dotted(path) or 'manifest'}: cannot read {shown!r} as {what}: {reason}"
            )
            raise _Skip from None
        if not isinstance(value, str) and isinstance(node, yaml.ScalarNode):
            if value is not None and node.style is None and _is_text_path(path):
                return node.value
            self.source.texts[path] = node.value
        return value

    def _key(self, node: yaml.Node, path: PathKey) -> str:
        where = f"{dotted(path)}: " if path else ""
        if not isinstance(node, yaml.ScalarNode):
            self.problem(path, node, f"{where}a key must be plain text, not a list or mapping")
            raise _Skip
        try:
            key = self.constructor.construct_object(node)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError):
            key = None
        if not isinstance(key, str):
            shown = _kind_of(key)
            written = node.value or "~"
            self.problem(
                path,
                node,
                f'{where}key {written!r} is read as {shown}, not text; quote it: "{escape(written)}"',
            )
            raise _Skip
        return key

    def _mapping(self, node: yaml.MappingNode, path: PathKey, depth: int, result: dict[str, Any]) -> None:
        """Read node's entries into result, then what its merge keys (``<<: *base``) bring in.

        Keys written in the mapping win over merged ones, and earlier merged mappings over later ones,
        as YAML's merge key specifies. Merged values count towards the value limit, like aliases.
        """
        merges: list[yaml.Node] = []
        written: dict[str, Position] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
            else:
                self._entry(key_node, value_node, path, depth, written=written, result=result)
        for merge in merges:
            self._merge(merge, path, depth, result)

    def _entry(
        self,
        key_node: yaml.Node,
        value_node: yaml.Node,
        path: PathKey,
        depth: int,
        *,
        written: dict[str, Position],
        result: dict[str, Any],
    ) -> None:
        """One entry of a mapping into result; written holds where the keys before it were written."""
        try:
            key = self._key(key_node, path)
        except _Skip:
            return
        if key in written:
            self.problem(
                (*path, key),
                key_node,
                f"{dotted((*path, key))}: duplicate key; it is already set on line {written[key].line}",
            )
            return
        written[key] = node_position(key_node)
        self.source.keys.setdefault((*path, key), written[key])
        try:
            result[key] = self.read(value_node, (*path, key), depth + 1)
        except _Skip:
            self.broken.add((*path, key))

    def _merge(self, merge: yaml.Node, path: PathKey, depth: int, result: dict[str, Any]) -> None:
        """What one merge key brings into result: the keys result does not have yet."""
        sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
        for merged in sources:
            if not isinstance(merged, yaml.MappingNode):
                where = f"{dotted(path)}: " if path else ""
                self.problem(path, merged, f"{where}a merge key (<<) takes a mapping or a list of mappings")
                continue
            self.nodes += 1
            if depth + 1 > MAX_DEPTH:
                raise FatalProblem(
                    node_position(merged), f"merge keys (<<) are nested more than {MAX_DEPTH} deep"
                )
            extra: dict[str, Any] = {}
            self._mapping(merged, path, depth + 1, extra)
            for key, value in extra.items():
                result.setdefault(key, value)


def _kind_of(value: Any) -> str:
    """What YAML made of an unquoted key, in words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return f"the number {value!r}" if len(repr(value)) <= 40 else "a number"
    if isinstance(value, datetime.date):
        return "a date"
    return f"a {type(value).__name__}"
