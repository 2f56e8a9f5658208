"""Read a manifest file into a JobManifest, reporting every problem with file:line:column.

YAML is composed into nodes (which carry their positions) and turned into plain data by hand, so
that each value's and key's position is known when pydantic later names a field path. Duplicate
keys, several documents, alias bombs and non-text input are refused here, before validation.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml
from pydantic import BaseModel, ValidationError

from runner.errors import ManifestError
from runner.spec.model import JobManifest

MAX_MANIFEST_BYTES = 1024 * 1024
MAX_NODES = 100_000

PathKey = tuple[str | int, ...]


@dataclass(frozen=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


@dataclass
class SourceMap:
    """Where each value, and each mapping key, stands in the file."""

    values: dict[PathKey, Position] = field(default_factory=dict)
    keys: dict[PathKey, Position] = field(default_factory=dict)

    def locate(self, path: PathKey, *, key: bool = False) -> Position:
        """The position of path, or of its nearest ancestor that exists in the file."""
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            if key and end == len(path) and prefix in self.keys:
                return self.keys[prefix]
            if prefix in self.values:
                return self.values[prefix]
        return Position(1, 1)


@dataclass(frozen=True)
class LoadedManifest:
    manifest: JobManifest
    path: Path
    text: str

    @property
    def base_dir(self) -> Path:
        """Relative paths in the manifest (context, inputs) are relative to its directory."""
        return self.path.parent


class _Problem(Exception):
    def __init__(self, position: Position, message: str) -> None:
        super().__init__(message)
        self.position = position
        self.message = message


def load_manifest(path: Path) -> LoadedManifest:
    """Read and validate the manifest at path; ManifestError lists every problem."""
    name = str(path)
    try:
        if path.is_dir():
            raise ManifestError([f"{name}: is a directory; expected a manifest file such as {name}/job.yaml"])
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise ManifestError([f"{name}: file is {size / 1e6:.1f} MB; a manifest is at most 1 MiB"])
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ManifestError(
            [f"{name}: no such file"], hint="check the path; manifests are YAML files"
        ) from None
    except PermissionError:
        raise ManifestError([f"{name}: permission denied"]) from None
    except IsADirectoryError:
        raise ManifestError([f"{name}: is a directory"]) from None
    manifest, text = parse_manifest(raw, name)
    return LoadedManifest(manifest=manifest, path=path.absolute(), text=text)


def parse_manifest(raw: bytes | str, name: str = "<manifest>") -> tuple[JobManifest, str]:
    """Parse manifest text; returns the validated manifest and the decoded text."""
    try:
        text = _decode(raw)
        data, source = _compose(text)
    except _Problem as problem:
        raise ManifestError([_format(name, problem.position, problem.message)]) from None
    try:
        return JobManifest.model_validate(data), text
    except ValidationError as error:
        raise ManifestError(_describe(error, source, name)) from None


def _decode(raw: bytes | str) -> str:
    if isinstance(raw, str):
        text = raw
    else:
        if len(raw) > MAX_MANIFEST_BYTES:
            raise _Problem(Position(1, 1), f"file is {len(raw) / 1e6:.1f} MB; a manifest is at most 1 MiB")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            line = raw[: error.start].count(b"\n") + 1
            raise _Problem(
                Position(line, 1),
                f"not a UTF-8 text file (byte 0x{raw[error.start]:02x} at offset {error.start})",
            ) from None
    if "\x00" in text:
        offset = text.index("\x00")
        raise _Problem(
            Position(text.count("\n", 0, offset) + 1, 1), "not a text file (it contains NUL bytes)"
        )
    return text


def _compose(text: str) -> tuple[Any, SourceMap]:
    try:
        documents = list(_first_two(yaml.compose_all(text, Loader=yaml.SafeLoader)))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1)
        problem = error.problem or "invalid YAML"
        context = f" ({error.context})" if error.context else ""
        raise _Problem(where, f"YAML syntax error: {problem}{context}") from None
    except yaml.reader.ReaderError as error:
        raise _Problem(Position(1, 1), f"not a text file: {error.reason}") from None
    except yaml.YAMLError as error:
        raise _Problem(Position(1, 1), f"YAML error: {error}") from None
    found = [doc for doc in documents if doc is not None]
    if not documents:
        raise _Problem(
            Position(1, 1), "the file is empty; expected a manifest with apiVersion, kind, metadata and spec"
        )
    if len(found) > 1:
        second = found[1].start_mark
        raise _Problem(
            Position(second.line + 1, second.column + 1),
            "expected one manifest, found a second YAML document; put each job in its own file",
        )
    root = found[0]
    if not isinstance(root, yaml.MappingNode):
        raise _Problem(
            _position(root), "expected a mapping with apiVersion, kind, metadata and spec at the top"
        )
    source = SourceMap()
    return _NodeReader(source).read(root, ()), source


def _first_two(documents: Iterator[yaml.Node | None]) -> Iterator[yaml.Node | None]:
    """Stop composing after a second non-empty document: the rest cannot matter."""
    found = 0
    for document in documents:
        yield document
        found += document is not None
        if found == 2:
            return


def _position(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


class _NodeReader:
    """Turns composed YAML nodes into plain data while recording positions."""

    def __init__(self, source: SourceMap) -> None:
        self.source = source
        self.nodes = 0
        self.constructor = yaml.SafeLoader("")

    def read(self, node: yaml.Node, path: PathKey) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Problem(
                _position(node), f"more than {MAX_NODES} values (do aliases expand without bound?)"
            )
        self.source.values.setdefault(path, _position(node))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.read(item, (*path, index)) for index, item in enumerate(node.value)]
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as error:
            raise _Problem(_position(node), f"cannot read value: {error}") from None

    def _key(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise _Problem(_position(node), "a key must be plain text, not a list or mapping")
        try:
            return self.constructor.construct_object(node)
        except yaml.YAMLError as error:
            raise _Problem(_position(node), f"cannot read key: {error}") from None

    def _mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[str, Any]:
        try:
            self.constructor.flatten_mapping(node)  # applies YAML merge keys (<<)
        except yaml.YAMLError as error:
            raise _Problem(_position(node), f"cannot merge mapping: {error}") from None
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node)
            if not isinstance(key, str):
                shown = str(key).lower() if isinstance(key, bool) else repr(key)
                raise _Problem(
                    _position(key_node),
                    f"key {key_node.value!r} is read as {shown}, not text; quote it: '{key_node.value}'",
                )
            if key in result:
                raise _Problem(
                    _position(key_node), f"duplicate key {key!r} in {_dotted(path) or 'the top level'}"
                )
            self.source.keys[(*path, key)] = _position(key_node)
            result[key] = self.read(value_node, (*path, key))
        return result


def _format(name: str, position: Position, message: str) -> str:
    return f"{name}:{position.line}:{position.column}: {message}"


def _dotted(path: PathKey) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _describe(error: ValidationError, source: SourceMap, name: str) -> list[str]:
    problems: list[tuple[Position, str]] = []
    seen: set[PathKey] = set()
    for item in error.errors():
        loc = tuple(item["loc"])
        path = _data_path(loc, source)
        kind = item["type"]
        if kind == "extra_forbidden":
            position = source.locate(path, key=True)
            message = "unknown field" + _did_you_mean(path)
        elif kind == "missing":
            position = source.locate(path[:-1])
            message = "required field is missing"
        else:
            if path in seen:  # several branches of a union failed at one place: one message is enough
                continue
            position = source.locate(path)
            message = _explain(item)
        seen.add(path)
        problems.append((position, f"{_dotted(path) or 'manifest'}: {message}"))
    problems.sort(key=lambda problem: (problem[0].line, problem[0].column))
    return [_format(name, position, message) for position, message in problems]


def _data_path(loc: tuple[Any, ...], source: SourceMap) -> PathKey:
    """Pydantic's location, less the union branch names that are not part of the manifest."""
    path: PathKey = ()
    for part in loc:
        candidate = (*path, part)
        if candidate not in source.values and candidate not in source.keys:
            if isinstance(part, str) and not any(c in part for c in "[]()"):
                path = candidate  # a missing key: still part of the path
            break
        path = candidate
    return path


def _explain(item: Any) -> str:
    kind = item["type"]
    given = item.get("input")
    got = f", got {_show(given)}" if not isinstance(given, dict | list) else ""
    if kind == "value_error":
        return str(item["ctx"]["error"])
    if kind == "literal_error":
        return f"expected {item['ctx']['expected']}{got}"
    message = str(item["msg"])
    message = message.replace("Input should be", "expected").replace("input should be", "expected")
    return message[:1].lower() + message[1:] + got


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return str(value).lower()
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _did_you_mean(path: PathKey) -> str:
    if not path or not isinstance(path[-1], str):
        return ""
    known = _known_keys(path[:-1])
    match = difflib.get_close_matches(path[-1], known, n=1, cutoff=0.6)
    if match:
        return f"; did you mean {match[0]!r}?"
    return f"; expected one of: {', '.join(known)}" if known else ""


def _known_keys(parent: PathKey) -> list[str]:
    """Field names (as spelled in manifests) of the model at parent, walking JobManifest's fields."""
    model: Any = JobManifest
    for part in parent:
        if isinstance(part, int):
            continue
        model = _model_of(model, part)
        if model is None:
            return []
    return [info.alias or name for name, info in model.model_fields.items()]


def _model_of(model: type[BaseModel], key: str) -> type[BaseModel] | None:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return _first_model(info.annotation)
    return None


def _first_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (list, Union, types.UnionType) or origin is typing.Annotated:
        for arg in typing.get_args(annotation):
            found = _first_model(arg)
            if found is not None:
                return found
    return None
