"""What the process backend says about spec.image.requirements and apt, which it does not install.

A job on the process backend runs in the runner's own Python environment. Its requirements are read here
(a file in the build context, or a list of pip specs) and each named distribution is looked up in that
environment: the ones missing are said at submit, with the pip command that installs them all.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path

from runner.spec.model import Image

# The distribution name at the start of a requirement line (PEP 508), before extras and versions.
_NAME = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(\[[^\]]*\])?\s*(.*)$")


def requirement_lines(text: str) -> list[str]:
    """The requirement lines of a requirements file: comments, blanks and pip options left out."""
    lines = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            lines.append(line)
    return lines


def missing(requirements: Iterable[str], installed: Callable[[str], str | None]) -> list[str]:
    """The requirements `installed` (a distribution's version, or None) does not satisfy. A line that
    is not a plain `name[extras] specifiers` (a URL, a path) is not judged; a version is judged only where
    the `packaging` library is at hand."""
    unmet = []
    for requirement in requirements:
        match = _NAME.match(requirement.split(";", 1)[0])
        if match is None or "://" in requirement or "/" in match.group(1):
            continue
        version = installed(match.group(1))
        if version is None or not _satisfies(version, match.group(3).strip()):
            unmet.append(requirement)
    return unmet


def _satisfies(version: str, specifiers: str) -> bool:
    if not specifiers:
        return True
    try:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet
    except ImportError:  # not a dependency of the runner: the name alone is judged
        return True
    try:
        return SpecifierSet(specifiers).contains(version, prereleases=True)
    except InvalidSpecifier:
        return True


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def not_installed_warning(image: Image, context_dir: Path) -> str | None:
    """The warning for requirements this environment lacks and apt packages, or None when all is here."""
    pip = f"{shlex.quote(sys.executable)} -m pip install"
    said = []
    requirements = image.requirements
    if isinstance(requirements, str):
        path = context_dir / requirements
        try:
            lines = requirement_lines(path.read_text(errors="replace"))
        except OSError:
            lines = []  # `runner validate` says a requirements file that is not there
        unmet = missing(lines, installed_version)
        if unmet:
            said.append(
                f"the process backend does not install spec.image.requirements ({requirements}); "
                f"not in this environment: {', '.join(unmet)}. Install them with: "
                f"{pip} -r {shlex.quote(str(path))}"
            )
    elif requirements:
        unmet = missing(requirements, installed_version)
        if unmet:
            said.append(
                "the process backend does not install spec.image.requirements; not in this environment: "
                f"{', '.join(unmet)}. Install them with: {pip} {' '.join(map(shlex.quote, unmet))}"
            )
    if image.apt:
        said.append(
            f"the process backend does not install spec.image.apt ({', '.join(image.apt)}): "
            "install them on this machine with apt-get"
        )
    if not said:
        return None
    return "; ".join(said) + " (or use --backend docker, which builds them into the job's image)"
