"""Label selectors as kubectl takes them (`-l team=vision,tier!=dev,gpu`): parsed, then matched. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from runner.errors import UserError


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "=", "!=", "exists", "!exists"
    value: str = ""

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "exists":
            return self.key in labels
        if self.operator == "!exists":
            return self.key not in labels
        if self.operator == "=":
            return labels.get(self.key) == self.value
        return labels.get(self.key) != self.value


def parse_selector(texts: Iterable[str]) -> list[Requirement]:
    """Every `-l` given (each comma-separated); all must match. UserError (exit 2) for a malformed one."""
    requirements = []
    for text in texts:
        for part in (item.strip() for item in text.split(",")):
            if not part:
                continue
            requirements.append(_requirement(part))
    return requirements


def _requirement(part: str) -> Requirement:
    for operator, written in (("!=", "!="), ("=", "=="), ("=", "=")):
        if written in part:
            key, value = (side.strip() for side in part.split(written, 1))
            if not key or any(c in value for c in "=!"):
                break
            return Requirement(key, operator, value)
    else:
        if part.startswith("!") and part[1:].strip():
            return Requirement(part[1:].strip(), "!exists")
        if not any(c in part for c in "=! "):
            return Requirement(part, "exists")
    raise UserError(
        f"label selector {part!r}: expected key=value, key!=value, key or !key",
        hint="e.g. -l team=vision,runner.dev/schedule",
    )


def matches(requirements: Iterable[Requirement], labels: Mapping[str, str]) -> bool:
    return all(requirement.matches(labels) for requirement in requirements)
