"""Pydantic's validation errors as manifest problems: a path in the file, a position, plain words.

Each error gets the manifest path of the value it concerns (without pydantic's union branch names),
the position of that value or its key, and a message that says what was expected and what was given,
with a did-you-mean for misspelt keys and values and the right section for a field written at the
wrong level.
"""

from __future__ import annotations

import datetime
import difflib
import functools
import re
import types
import typing
from typing import Any, Union

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from runner.spec.model import JobManifest
from runner.spec.positions import Found, PathKey, Position, SourceMap, dotted, escape

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


# A pydantic error in the manifest: its path, position and message, and pydantic's details.
_Located = tuple[PathKey, Position, str, dict[str, Any]]


def describe(error: ValidationError, source: SourceMap, broken: set[PathKey]) -> Found:
    """One problem per place: pydantic's errors, with manifest paths, positions and plain words.

    Errors at or under a path the reader already reported (broken) are left out.
    """
    found: list[_Located] = []
    for item in error.errors():
        path, position, message = _place(item, source)
        if any(path[:end] in broken for end in range(len(path) + 1)):
            continue
        found.append((path, position, message, dict(item)))
    return _one_per_place(found, source)


def _place(item: ErrorDetails, source: SourceMap) -> tuple[PathKey, Position, str]:
    """Where in the manifest one of pydantic's errors is, and what it says in plain words."""
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
    return path, position, message


def _one_per_place(found: list[_Located], source: SourceMap) -> Found:
    """The problems to report: one per path and message, with the failed branches of a union
    (str | list[str]) folded into one "expected text or a list"."""
    # Where the branches of a union failed: the paths with deeper errors under them, and the kinds
    # of type mismatch at each path.
    deeper = {path[:end] for path, *_ in found for end in range(len(path))}
    mismatches: dict[PathKey, list[str]] = {}
    for path, _, _, details in found:
        if details["type"] in _EXPECTED:
            mismatches.setdefault(path, []).append(_EXPECTED[details["type"]])
    problems: Found = []
    seen: set[tuple[PathKey, str]] = set()
    for path, position, message, details in found:
        if details["type"] in _EXPECTED:
            if path in deeper:  # a branch that failed outright while another got into the value
                continue
            nouns = list(dict.fromkeys(mismatches[path]))
            if len(nouns) > 1:  # every branch failed here: say what each would have taken
                message = f"expected {' or '.join(nouns)}{_got(details.get('input'), source.texts.get(path))}"
        if (path, message) not in seen:
            seen.add((path, message))
            problems.append((path, position, f"{dotted(path) or 'manifest'}: {message}"))
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
        return _not_a_choice(str(ctx.get("expected", "")), given, got)
    if kind in _EXPECTED:
        message = f"expected {_EXPECTED[kind]}{got}"
        if kind == "string_type" and text is not None and given is not None:
            message += f'; quote it: "{escape(text)}"'
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


def _not_a_choice(expected: str, given: Any, got: str) -> str:
    """A value that is none of the allowed ones ("'Forbid', 'Replace' or 'Allow'"), with a did-you-mean."""
    message = f"expected {expected}{got}"
    if isinstance(given, str):
        choices = re.findall(r"'([^']*)'", expected)
        same = [choice for choice in choices if choice.lower() == given.lower()]
        close = same or (len(choices) > 1 and difflib.get_close_matches(given, choices, n=1, cutoff=0.6))
        if close and close[0] != given:
            message += f"; did you mean {close[0]!r}?"
    return message


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
