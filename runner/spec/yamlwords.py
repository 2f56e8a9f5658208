"""PyYAML's syntax errors said in plain words ("expected <block end>, but found '<block mapping start>'"
becomes what is wrong with the line's indentation, and what to do). Pure: the error's words, marks and the
text in, one sentence out; the position stays the error's own."""

from __future__ import annotations

from typing import Protocol


class Mark(Protocol):
    line: int
    column: int


def plain_words(
    problem: str, context: str, problem_mark: Mark | None, context_mark: Mark | None, text: str
) -> str:
    """What a YAML syntax error means, for someone who writes a manifest."""
    lines = text.splitlines()
    line = problem_mark.line if problem_mark else 0
    here = lines[line] if 0 <= line < len(lines) else ""
    opened = f"line {context_mark.line + 1}, column {context_mark.column + 1}" if context_mark else "above"
    if "\t" in here[: len(here) - len(here.lstrip())] or "'\\t'" in problem:
        return "a tab character: YAML indents with spaces only; replace the tab with spaces"
    if problem.startswith("found character") and problem.endswith("that cannot start any token"):
        character = (
            problem.removeprefix("found character").removesuffix("that cannot start any token").strip()
        )
        return f"{character} cannot start a plain value: put the value in quotes, like '@daily'"
    if problem.startswith("expected <block end>") and "block collection" in context:
        return (
            f"this line is indented like the items of the list that starts at {opened} but is not an item "
            "(`- ...`): make it one, or indent it like the key it belongs to"
        )
    if problem.startswith("expected <block end>"):
        indents = sorted(
            {_indent(above) for above in _content(lines[context_mark.line if context_mark else 0 : line])}
        )
        spaces = " or ".join(str(n) for n in indents) or "0"
        return (
            f"bad indentation: this line is indented {_indent(here)} space(s), but the lines above it are "
            f"indented {spaces}: the keys of one mapping must start at the same column"
        )
    if problem == "mapping values are not allowed here":
        return (
            "a ':' where no mapping can start: indent this line like the keys around it, or quote a value "
            "that contains ': '"
        )
    return _unclosed(problem, context, context_mark, opened)


def _unclosed(problem: str, context: str, context_mark: Mark | None, opened: str) -> str:
    """What was opened above and not finished: a key, a quote, brackets, braces, an alias's anchor."""
    if problem == "could not find expected ':'":
        where = f"line {context_mark.line + 1}" if context_mark else "the line above"
        return f"{where} is not `key: value`: add the ':', or indent it to continue the line above"
    if "quoted scalar" in context:
        return f"the quoted text that starts at {opened} is never closed: add its closing quote"
    if "flow sequence" in context:
        return (
            f"the list in [brackets] that starts at {opened} is not closed, or lacks a ',': close it with ']'"
        )
    if "flow mapping" in context:
        return (
            f"the mapping in {{braces}} that starts at {opened} is not closed, or lacks a ',' "
            "(close it with })"
        )
    if problem.startswith("found undefined alias"):
        name = problem.removeprefix("found undefined alias").strip(" '")
        return f"the alias *{name} refers to no anchor: define it first with &{name}"
    return f"YAML syntax error: {problem}" + (f" ({context})" if context else "")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _content(lines: list[str]) -> list[str]:
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
