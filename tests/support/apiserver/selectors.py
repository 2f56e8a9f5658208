"""Label and field selectors, parsed the way the API server parses them (a bad one raises ValueError)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Matcher = Callable[[dict[str, Any]], bool]

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_EXISTS = re.compile(rf"^(!?)\s*({_KEY})$")
_EQUALITY = re.compile(rf"^({_KEY})\s*(==|=|!=)\s*({_VALUE})$")
_SET = re.compile(rf"^({_KEY})\s+(in|notin)\s*\(([^()]*)\)$")
_NUMERIC = re.compile(rf"^({_KEY})\s*([<>])\s*(-?\d+)$")


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses: `a in (x,y),b` -> ["a in (x,y)", "b"]."""
    terms: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
    terms.append("".join(current))
    return [t.strip() for t in terms if t.strip()]


def _label_requirement(term: str) -> Callable[[Mapping[str, str]], bool]:
    if match := _SET.match(term):
        key, op, raw = match.groups()
        values = {v.strip() for v in raw.split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if match := _EQUALITY.match(term):
        key, op, value = match.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _NUMERIC.match(term):
        key, op, number = match.groups()
        bound = int(number)

        def compare(labels: Mapping[str, str]) -> bool:
            raw = labels.get(key)
            if raw is None or not re.fullmatch(r"-?\d+", raw):
                return False
            return int(raw) > bound if op == ">" else int(raw) < bound

        return compare
    if match := _EXISTS.match(term):
        negate, key = match.groups()
        if negate:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise ValueError(f"unable to parse requirement: {term!r}")


def parse_labels(text: str | None) -> Callable[[Mapping[str, str]], bool]:
    """A matcher over a labels mapping; an empty selector matches everything."""
    requirements = [_label_requirement(term) for term in _split_top_level(text or "")]
    return lambda labels: all(req(labels) for req in requirements)


def label_matcher(text: str | None) -> Matcher:
    match = parse_labels(text)
    return lambda obj: match(obj.get("metadata", {}).get("labels") or {})


def selector_dict_matcher(selector: Mapping[str, Any] | None) -> Callable[[Mapping[str, str]], bool]:
    """A matcher for a metav1.LabelSelector dict (matchLabels + matchExpressions); None matches nothing."""
    if selector is None:
        return lambda labels: False
    return parse_labels(format_selector(selector))


def format_selector(selector: Mapping[str, Any] | None) -> str:
    """metav1.FormatLabelSelector: `a=b,c in (d,e)`; `<none>` when empty."""
    if not selector:
        return "<none>"
    terms = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], sorted(expr.get("values") or [])
        if op == "In":
            terms.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            terms.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            terms.append(key)
        elif op == "DoesNotExist":
            terms.append(f"!{key}")
    return ",".join(terms) or "<none>"


# --- field selectors -------------------------------------------------------------------------------------


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def field_value(obj: dict[str, Any], path: str) -> str:
    """The string a field selector compares with: missing is "", booleans are "true"/"false"."""
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, dict):
            return ""
        node = node.get(part)
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, dict) and path == "source":
        return str(node.get("component", ""))
    return str(node)


def field_matcher(text: str | None, allowed: tuple[str, ...]) -> Matcher:
    """Equality (`=`, `==`) and inequality (`!=`) on the given field labels; others raise ValueError."""
    requirements: list[tuple[str, bool, str]] = []
    for term in _split_unescaped(text or "", ","):
        if not term.strip():
            continue
        match = re.fullmatch(r"([^=!]+?)(==|=|!=)(.*)", term.strip())
        if not match:
            raise ValueError(f"invalid selector: '{text}'; can't understand '{term}'")
        field, op, value = match.groups()
        if field not in allowed:
            raise ValueError(f'field label not supported: "{field}"')
        requirements.append((field, op != "!=", _unescape(value)))
    return lambda obj: all((field_value(obj, f) == v) is eq for f, eq, v in requirements)
