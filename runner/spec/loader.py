"""Read a manifest file into a JobManifest, reporting every problem with file:line:column.

YAML is composed into nodes (which carry their positions) and turned into plain data by hand, so
that each value's and key's position is known when pydantic later names a field path. Duplicate
keys, several documents, alias bombs and non-text input are refused here, before validation.
"""

from __future__ import annotations

import datetime
import difflib
import functools
import re
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
MAX_NODES = 100_000  # values after aliases are expanded: far more than any real manifest
MAX_DEPTH = 64  # mappings and lists nested this deep are no manifest (or a recursive alias)
MAX_PROBLEMS = 200  # reported one per line; past this, a count

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


@dataclass(frozen=True)
class LoadedManifest:
    manifest: JobManifest
    path: Path
    text: str

    @property
    def base_dir(self) -> Path:
        """Relative paths in the manifest (context, inputs) are relative to its directory."""
        return self.path.parent

    @property
    def context_dir(self) -> Path:
        """spec.image.context resolved against the manifest's directory: the job's build context."""
        return (self.base_dir / self.manifest.spec.image.context).resolve()


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
        with path.open("rb") as file:
            # Read one byte more than allowed, so that devices and pipes without a size are bounded too.
            raw = file.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        raise ManifestError(
            [f"{name}: no such file"], hint="check the path; manifests are YAML files such as job.yaml"
        ) from None
    except PermissionError:
        raise ManifestError([f"{name}: permission denied"]) from None
    except IsADirectoryError:
        raise ManifestError([f"{name}: is a directory"]) from None
    except OSError as error:
        raise ManifestError([f"{name}: cannot read the file: {error.strerror or error}"]) from None
    except ValueError as error:  # a path with a NUL byte in it
        raise ManifestError([f"{name}: not a usable path: {error}"]) from None
    if len(raw) > MAX_MANIFEST_BYTES:
        try:
            stat_size = path.stat().st_size
        except OSError:
            stat_size = 0
        size = f"{stat_size / 2**20:.1f} MiB" if stat_size > MAX_MANIFEST_BYTES else "more than 1 MiB"
        raise ManifestError([f"{name}: the file is {size}; a manifest is at most 1 MiB"])
    manifest, text = parse_manifest(raw, name)
    return LoadedManifest(manifest=manifest, path=path.absolute(), text=text)


def parse_manifest(raw: bytes | str, name: str = "<manifest>") -> tuple[JobManifest, str]:
    """Parse manifest text; returns the validated manifest and the decoded text.

    Raises ManifestError listing every problem found, one ``name:line:column: message`` per line,
    sorted by position.
    """
    try:
        text = _decode(raw)
        data, source, problems, broken = _compose(text)
    except _Problem as problem:
        raise ManifestError([_format(name, problem.position, problem.message)]) from None
    try:
        manifest = JobManifest.model_validate(data)
    except ValidationError as error:
        problems = problems + _describe(error, source, broken)
    if problems:
        problems.sort(key=lambda problem: (problem[1].line, problem[1].column))
        if len(problems) > MAX_PROBLEMS:
            rest = len(problems) - MAX_PROBLEMS
            more = ((), problems[MAX_PROBLEMS][1], f"... and {rest} more problem{'s' if rest > 1 else ''}")
            problems = [*problems[:MAX_PROBLEMS], more]
        raise ManifestError([_format(name, position, message) for _, position, message in problems])
    return manifest, text


def _decode(raw: bytes | str) -> str:
    if isinstance(raw, str):
        text = raw
    else:
        if len(raw) > MAX_MANIFEST_BYTES:
            raise _Problem(
                Position(1, 1), f"the file is {len(raw) / 2**20:.1f} MiB; a manifest is at most 1 MiB"
            )
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise _Problem(Position(1, 1), "the file is UTF-16 text; save the manifest as UTF-8")
        if b"\x00" in raw:  # binary data, whatever else it holds
            before = raw[: raw.index(b"\x00")].decode("utf-8", "replace")
            raise _Problem(_offset_position(before, len(before)), "not a text file (it contains NUL bytes)")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            line = raw[: error.start].count(b"\n") + 1
            column = len(raw[: error.start].rsplit(b"\n", 1)[-1].decode("utf-8", "replace")) + 1
            raise _Problem(
                Position(line, column),
                f"not a UTF-8 text file (byte 0x{raw[error.start]:02x} at offset {error.start}); "
                "save the manifest as UTF-8",
            ) from None
    if len(text) > MAX_MANIFEST_BYTES:
        raise _Problem(Position(1, 1), "the text is more than 1 MiB; a manifest is at most 1 MiB")
    if "\x00" in text:
        raise _Problem(_offset_position(text, text.index("\x00")), "not a text file (it contains NUL bytes)")
    return text


def _offset_position(text: str, offset: int) -> Position:
    line_start = text.rfind("\n", 0, offset) + 1
    return Position(text.count("\n", 0, offset) + 1, offset - line_start + 1)


_Found = list[tuple[PathKey, Position, str]]


def _compose(text: str) -> tuple[Any, SourceMap, _Found, set[PathKey]]:
    try:
        documents = list(_first_two(yaml.compose_all(text, Loader=yaml.SafeLoader)))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1)
        problem = error.problem or "invalid YAML"
        context = f" ({error.context})" if error.context else ""
        raise _Problem(where, f"YAML syntax error: {problem}{context}") from None
    except yaml.reader.ReaderError as error:
        character = chr(error.character) if isinstance(error.character, int) else str(error.character)
        raise _Problem(
            _offset_position(text, error.position),
            f"the character {character!r} (U+{ord(character[:1] or ' '):04X}) cannot appear in a YAML "
            "file; remove it",
        ) from None
    except yaml.YAMLError as error:
        raise _Problem(Position(1, 1), f"YAML error: {error}") from None
    except RecursionError:
        raise _Problem(
            Position(1, 1), f"lists or mappings are nested too deeply (at most {MAX_DEPTH} levels)"
        ) from None
    found = [doc for doc in documents if doc is not None and not _empty(doc)]
    if not found:
        raise _Problem(
            Position(1, 1), "the file is empty; expected a manifest with apiVersion, kind, metadata and spec"
        )
    if len(found) > 1:
        raise _Problem(
            _position(found[1]),
            "expected one manifest, found a second YAML document; put each job in its own file",
        )
    root = found[0]
    if not isinstance(root, yaml.MappingNode):
        got = "a list" if isinstance(root, yaml.SequenceNode) else f"{root.value[:40]!r}"
        raise _Problem(
            _position(root),
            f"expected a mapping with apiVersion, kind, metadata and spec at the top, got {got}",
        )
    reader = _NodeReader()
    data = reader.read(root, (), 0)
    return data, reader.source, reader.problems, reader.broken


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


def _position(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


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
        self.problems: _Found = []
        self.broken: set[PathKey] = set()  # values that could not be read: no further complaints there
        self.nodes = 0
        self.constructor = yaml.SafeLoader("")

    def problem(self, path: PathKey, node: yaml.Node, message: str) -> None:
        self.problems.append((path, _position(node), message))

    def read(self, node: yaml.Node, path: PathKey, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Problem(
                _position(node),
                f"more than {MAX_NODES} values, counting each use of an alias; a manifest has far fewer "
                "(is this an alias bomb?)",
            )
        if depth > MAX_DEPTH:
            raise _Problem(
                _position(node),
                f"lists or mappings are nested more than {MAX_DEPTH} levels deep (a recursive alias?)",
            )
        self.source.values.setdefault(path, _position(node))
        if not isinstance(node, yaml.ScalarNode) and node.tag not in _PLAIN_TAGS:
            # !!python/object/apply and friends: never constructed, and not quietly read as plain data.
            self.problem(
                path, node, f"{_dotted(path) or 'manifest'}: the YAML tag {node.tag!r} is not supported"
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
                    path, node, f"{_dotted(path) or 'manifest'}: the YAML tag {node.tag!r} is not supported"
                )
                raise _Skip from None
            self.problem(path, node, f"{_dotted(path) or 'manifest'}: cannot read the value: {problem}")
            raise _Skip from None
        except (ValueError, TypeError, OverflowError) as error:
            # e.g. a date that does not exist (2024-13-45), or an integer with thousands of digits
            shown = node.value if len(node.value) <= 40 else node.value[:37] + "..."
            what = _TAG_NAMES.get(node.tag, f"a {node.tag.rsplit(':', 1)[-1]}")
            reason = "it has too many digits" if "digits" in str(error) else str(error)
            self.problem(
                path, node, f"{_dotted(path) or 'manifest'}: cannot read {shown!r} as {what}: {reason}"
            )
            raise _Skip from None
        if not isinstance(value, str) and isinstance(node, yaml.ScalarNode):
            if value is not None and node.style is None and _is_text_path(path):
                return node.value
            self.source.texts[path] = node.value
        return value

    def _key(self, node: yaml.Node, path: PathKey) -> str:
        where = f"{_dotted(path)}: " if path else ""
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
                f'{where}key {written!r} is read as {shown}, not text; quote it: "{_escape(written)}"',
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
                continue
            try:
                key = self._key(key_node, path)
            except _Skip:
                continue
            if key in written:
                self.problem(
                    (*path, key),
                    key_node,
                    f"{_dotted((*path, key))}: duplicate key; it is already set on line {written[key].line}",
                )
                continue
            written[key] = _position(key_node)
            self.source.keys.setdefault((*path, key), written[key])
            try:
                result[key] = self.read(value_node, (*path, key), depth + 1)
            except _Skip:
                self.broken.add((*path, key))
        for merge in merges:
            sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
            for merged in sources:
                if not isinstance(merged, yaml.MappingNode):
                    where = f"{_dotted(path)}: " if path else ""
                    self.problem(
                        path, merged, f"{where}a merge key (<<) takes a mapping or a list of mappings"
                    )
                    continue
                self.nodes += 1
                if depth + 1 > MAX_DEPTH:
                    raise _Problem(
                        _position(merged), f"merge keys (<<) are nested more than {MAX_DEPTH} deep"
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


def _format(name: str, position: Position, message: str) -> str:
    message = message.replace("\r", "\\r").replace("\n", "\\n")
    return f"{name}:{position.line}:{position.column}: {message}"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")


def _dotted(path: PathKey) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not _PLAIN_KEY.fullmatch(part) or len(part) > 60:
            text += f"[{part if len(part) <= 60 else part[:57] + '...'!r}]"
        else:
            text += f".{part}" if text else part
    return text


# Pydantic error types that say "the value has the wrong type", and what was expected instead.
_EXPECTED = {
    "string_type": "text",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "float_type": "a number",
    "float_parsing": "a number",
}

_MISSING_HINTS: dict[PathKey, str] = {
    ("apiVersion",): "add apiVersion: runner/v1",
    ("kind",): "add kind: Job",
    ("metadata",): "add metadata: {name: my-job}",
    ("spec",): "add a spec with at least a command",
    ("metadata", "name"): "name the job, like name: mnist",
    ("spec", "command"): "say what to run, like command: [python, train.py]",
}


def _describe(error: ValidationError, source: SourceMap, broken: set[PathKey]) -> _Found:
    """One problem per place: pydantic's errors, with manifest paths, positions and plain words.

    Errors at or under a path the reader already reported (broken) are left out.
    """
    found: list[tuple[PathKey, Position, str, dict[str, Any]]] = []
    for item in error.errors():
        loc = tuple(item["loc"])
        kind = item["type"]
        if kind == "missing":
            path: PathKey = (*_data_path(loc[:-1], source), loc[-1])
            hint = _MISSING_HINTS.get(path)
            message = "required field is missing" + (f"; {hint}" if hint else "")
            position = source.locate(path[:-1], key=True) if path[:-1] else Position(1, 1)
        elif kind == "extra_forbidden":
            path = _data_path(loc, source)
            position = source.locate(path, key=True)
            message = "unknown field" + _did_you_mean(path)
        else:
            path = _data_path(loc, source)
            # A problem with a whole mapping or list is shown at its key: a block mapping's value
            # starts at its first entry, which is not where the problem is.
            position = source.locate(path, key="[key]" in loc or path in source.collections)
            message = _explain(item, source.texts.get(path))
        if any(path[:end] in broken for end in range(len(path) + 1)):
            continue
        found.append((path, position, message, dict(item)))
    # Where the branches of a union (str | list[str]) failed: the paths with deeper errors under them,
    # and the kinds of type mismatch at each path.
    deeper = {path[:end] for path, *_ in found for end in range(len(path))}
    mismatches: dict[PathKey, list[str]] = {}
    for path, _, _, details in found:
        if details["type"] in _EXPECTED:
            mismatches.setdefault(path, []).append(_EXPECTED[details["type"]])
    problems: _Found = []
    seen: set[tuple[PathKey, str]] = set()
    for path, position, message, details in found:
        if details["type"] in _EXPECTED:
            if path in deeper:  # a branch that failed outright while another got into the value
                continue
            nouns = list(dict.fromkeys(mismatches[path]))
            if len(nouns) > 1:  # every branch failed here: say what each would have taken
                message = f"expected {' or '.join(nouns)}{_got(details.get('input'), source.texts.get(path))}"
        if (path, message) in seen:
            continue
        seen.add((path, message))
        problems.append((path, position, f"{_dotted(path) or 'manifest'}: {message}"))
    return problems


def _data_path(loc: tuple[Any, ...], source: SourceMap) -> PathKey:
    """Pydantic's location as a path in the manifest: without union branch names ("str",
    "list[str]") and the "[key]" marker of dictionary keys, which are not in the file."""
    path: PathKey = ()
    for part in loc:
        if source.known((*path, part)):
            path = (*path, part)
    return path


def _explain(item: Any, text: str | None) -> str:
    kind = item["type"]
    given = item.get("input")
    ctx = item.get("ctx") or {}
    got = _got(given, text)
    if kind == "value_error":
        return str(ctx.get("error", item["msg"]))
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        message = f"expected {expected}{got}"
        if isinstance(given, str):
            choices = re.findall(r"'([^']*)'", expected)
            same = [choice for choice in choices if choice.lower() == given.lower()]
            close = same or (len(choices) > 1 and difflib.get_close_matches(given, choices, n=1, cutoff=0.6))
            if close and close[0] != given:
                message += f"; did you mean {close[0]!r}?"
        return message
    if kind in _EXPECTED:
        message = f"expected {_EXPECTED[kind]}{got}"
        if kind == "string_type" and text is not None and given is not None:
            message += f'; quote it: "{_escape(text)}"'
        return message
    if kind == "too_short":
        minimum = ctx.get("min_length", 1)
        return f"expected at least {minimum} item{'s' if minimum != 1 else ''}, got an empty list"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        words = {
            "greater_than_equal": ("at least", "ge"),
            "less_than_equal": ("at most", "le"),
            "greater_than": ("more than", "gt"),
            "less_than": ("less than", "lt"),
        }
        word, bound = words[kind]
        return f"expected {word} {ctx.get(bound)}{got}"
    if kind == "finite_number":
        return f"expected a finite number{got}"
    message = str(item["msg"])
    message = message.replace("Input should be", "expected").replace("input should be", "expected")
    return message[:1].lower() + message[1:] + got


def _got(value: Any, text: str | None = None) -> str:
    return f", got {_show(value, text)}"


def _show(value: Any, text: str | None = None) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, datetime.date) and text is not None:
        return text  # a date, as written
    if isinstance(value, int) and abs(value) >= 10**60:
        return "a very large number"
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _did_you_mean(path: PathKey) -> str:
    if not path or not isinstance(path[-1], str):
        return ""
    key = path[-1]
    known = _known_keys(path[:-1])
    match = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    home = _homes().get(key)
    if home is not None and (not match or match[0].lower() != key.lower()):
        # A field of another section, written at the wrong level: `gpu: 1` straight under spec.
        return f"; {key} belongs under {home}"
    if match:
        return f"; did you mean {match[0]!r}?"
    return f"; expected one of: {', '.join(known)}" if known else ""


@functools.cache
def _homes() -> dict[str, str]:
    """Where each field of the manifest below the top level belongs, in words: "spec.resources",
    "metadata or each item of spec.inputs"."""
    homes: dict[str, list[str]] = {}
    queue: list[tuple[str, str, type[BaseModel]]] = [("", "", JobManifest)]
    while queue:
        where, shown, model = queue.pop(0)
        for name, info in model.model_fields.items():
            spelled = info.alias or name
            if where:
                homes.setdefault(spelled, []).append(shown)
            inner = _first_model(info.annotation)
            if inner is not None:
                path = f"{where}.{spelled}" if where else spelled
                is_list = typing.get_origin(info.annotation) is list
                queue.append((path, f"each item of {path}" if is_list else path, inner))
    return {name: " or ".join(places) for name, places in homes.items()}


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
