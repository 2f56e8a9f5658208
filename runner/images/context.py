"""Build contexts: which files of a job's context go into its image or its per-run copy.

Patterns follow .dockerignore: one per line, '#' comments, '*' and '?' within a path part, '**'
across parts, a leading '!' re-includes, the last matching pattern wins, and a pattern that matches
a directory excludes everything below it.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

IGNORE_FILE = ".dockerignore"


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern[str]
    include: bool


def _translate(pattern: str) -> re.Pattern[str]:
    out = ""
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**", index):
            index += 2
            if pattern.startswith("/", index):
                index += 1
                out += "(?:.*/)?"
            else:
                out += ".*"
            continue
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[":
            end = pattern.find("]", index + 1)
            if end == -1:
                out += re.escape(char)
            else:
                body = pattern[index + 1 : end].replace("\\", "\\\\")
                out += "[" + ("^" + body[1:] if body.startswith("!") else body) + "]"
                index = end
        else:
            out += re.escape(char)
        index += 1
    return re.compile(out + r"\Z")


class IgnoreRules:
    def __init__(self, lines: Iterable[str]) -> None:
        self._patterns: list[_Pattern] = []
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            include = line.startswith("!")
            cleaned = "/".join(part for part in line.lstrip("!").strip().split("/") if part not in ("", "."))
            if cleaned:
                self._patterns.append(_Pattern(_translate(cleaned), include))

    @property
    def has_exceptions(self) -> bool:
        """Whether some '!' pattern may re-include a path below an excluded directory."""
        return any(pattern.include for pattern in self._patterns)

    @classmethod
    def for_context(cls, context: Path) -> IgnoreRules:
        ignore_file = context / IGNORE_FILE
        return cls(ignore_file.read_text().splitlines() if ignore_file.is_file() else [])

    def excluded(self, relative: str) -> bool:
        """Whether the context-relative POSIX path is left out."""
        parts = relative.split("/")
        prefixes = ["/".join(parts[:end]) for end in range(1, len(parts) + 1)]
        verdict = False
        for pattern in self._patterns:
            if any(pattern.regex.match(prefix) for prefix in prefixes):
                verdict = not pattern.include
        return verdict


def copy_context(context: Path, destination: Path, *, skip: Iterable[Path] = ()) -> None:
    """Copy context to destination (which must not exist), leaving out what .dockerignore excludes.

    Directories in skip (such as the runner's own home, when it lies inside the context) and the
    destination itself are never copied.
    """
    rules = IgnoreRules.for_context(context)
    never = {path.absolute() for path in (*skip, destination)}

    def ignored(directory: str, names: list[str]) -> set[str]:
        base = Path(directory).relative_to(context)
        return {
            name
            for name in names
            if rules.excluded((base / name).as_posix()) or Path(directory, name).absolute() in never
        }

    shutil.copytree(context, destination, symlinks=True, ignore=ignored)


def context_files(context: Path, *, skip: Iterable[Path] = ()) -> list[str]:
    """The context's files that go into a build, as sorted context-relative POSIX paths.

    Regular files and symbolic links (never followed, not even to directories) that .dockerignore
    keeps; directories themselves, sockets, FIFOs and devices are not listed. Like Docker, an excluded
    directory is still searched when some '!' pattern could re-include a path below it
    (``build/`` then ``!build/keep.txt``). Directories in skip are left out whole.
    """
    rules = IgnoreRules.for_context(context)
    never = {path.absolute() for path in skip}
    found: list[str] = []

    def walk(directory: Path, prefix: str) -> None:
        with os.scandir(directory) as entries:
            listed = list(entries)
        for entry in listed:
            relative = prefix + entry.name
            path = directory / entry.name
            if path.absolute() in never:
                continue
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                if rules.has_exceptions or not rules.excluded(relative):
                    walk(path, relative + "/")
            elif (stat.S_ISREG(mode) or stat.S_ISLNK(mode)) and not rules.excluded(relative):
                found.append(relative)

    walk(context, "")
    return sorted(found)
