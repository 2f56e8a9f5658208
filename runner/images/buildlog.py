"""Reading a classic-builder output stream: the current step, its last lines, the images it committed,
and, when the build fails, a BuildError that names the failing step with the end of its output and a hint.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runner.images.engine import BuildError, Progress, short
from runner.images.recipe import BuildRecipe

TAIL_LINES = 15  # lines of the failing step's output in a BuildError
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_STEP = re.compile(r"Step \d+/\d+ : ")
_IMAGE_ID = re.compile(r"[0-9a-f]{12,64}")
_NONZERO = re.compile(r"The command '.*' returned a non-zero code: (\d+)\Z", re.DOTALL)
_CHATTER = ("Removing intermediate container ", "Successfully built ", "Successfully tagged ")
_STEP_SHOWN = 240  # characters of a step's instruction shown in a message


@dataclass
class BuildLog:
    """Follows a classic-builder output stream: the current step, its last lines, the images it made."""

    progress: Progress
    step: str | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    created: list[str] = field(default_factory=list)  # short ids of the images this build committed
    _partial: str = ""
    _new: bool = False

    @property
    def lines(self) -> list[str]:
        return list(self.tail)

    @property
    def at_base(self) -> bool:
        """Whether the build had not yet got past its FROM step."""
        return self.step is None or self.step.split(" : ", 1)[-1].startswith("FROM ")

    def feed(self, text: str) -> None:
        self._partial += text
        *complete, self._partial = self._partial.split("\n")
        for line in complete:
            self._line(line)

    def flush(self) -> None:
        if self._partial:
            self._line(self._partial)
            self._partial = ""

    def status(self, event: Mapping[str, Any]) -> None:
        text = " ".join(str(event[key]) for key in ("id", "status") if event.get(key))
        if text:
            self.progress(text)

    def _line(self, raw: str) -> None:
        line = _ANSI.sub("", raw).rstrip()
        if not line.strip():
            return
        if _STEP.match(line):
            self._start_step(line)
        elif line.startswith(" ---> "):
            self._step_result(line)
        elif not line.startswith(_CHATTER):
            self.tail.append(line)
            self.progress(line)

    def _start_step(self, line: str) -> None:
        self.step = line
        self.tail.clear()
        # A step's image is new unless it came from the cache, or is the base (FROM).
        self._new = not line.split(" : ", 1)[-1].startswith("FROM ")
        self.progress(line)

    def _step_result(self, line: str) -> None:
        """A `` ---> `` line: the image the step committed, or that it used the cache."""
        rest = line[len(" ---> ") :].strip()
        if _IMAGE_ID.fullmatch(rest):
            if self._new:
                self.created.append(rest)
            self._new = False
        elif rest == "Using cache":
            self._new = False
            self.progress(line)


def missing_base_error(recipe: BuildRecipe, error: str, log: BuildLog) -> BuildError:
    """The build failed at its FROM step and the engine does not have the base image."""
    return BuildError(
        f"base image {recipe.base} is not on this machine and cannot be pulled: {short(error)}",
        hint=(
            f"pull it where its registry is reachable (docker pull {recipe.base}) or load it "
            f"(docker load -i FILE.tar), or set spec.image.base to an image this machine has"
        ),
        step=log.step,
        output=log.lines,
    )


def step_error(recipe: BuildRecipe, reference: str, log: BuildLog, error: str) -> BuildError:
    """The build failed at log's current step: which step, why, the end of its output and a hint."""
    step = log.step
    lines = log.lines
    match = _NONZERO.match(error.strip())
    reason = f"it exited with code {match.group(1)}" if match else short(error)
    shown = _shown_step(step) if step else "the start of the build"
    message = f"building {reference} failed at {shown}: {reason}"
    if lines:
        message += "\nlast lines of its output:\n" + "\n".join(f"  | {line}" for line in lines)
    return BuildError(message, hint=_build_hint(recipe, step or "", lines), step=step, output=lines)


def _shown_step(step: str) -> str:
    step = " ".join(step.split())  # the builder joins continued lines with their indentation
    return step if len(step) <= _STEP_SHOWN else step[: _STEP_SHOWN - 3] + "..."


def _build_hint(recipe: BuildRecipe, step: str, lines: Sequence[str]) -> str:
    text = "\n".join(lines)
    instruction = step.split(" : ", 1)[-1]
    if "No module named pip" in text:
        return (
            f"the base image {recipe.base} has no pip: choose a base with pip, "
            "or add python3-pip to spec.image.apt"
        )
    if "requires a different Python" in text and recipe.runner_wheel.rsplit("/", 1)[-1] in instruction:
        return f"the runner's agent needs Python 3.11 or newer; {recipe.base} has an older one"
    if "pip install" in instruction:
        return _pip_hint(recipe, text)
    if "apt-get" in instruction:
        return "check the names in spec.image.apt, and that the build reaches a Debian or Ubuntu mirror"
    return "the lines above are the end of the failing step's output; fix the cause and build again"


def _pip_hint(recipe: BuildRecipe, text: str) -> str:
    if recipe.wheelhouse and ("No matching distribution" in text or "Could not find a version" in text):
        return (
            "the context's wheelhouse/ has no wheel that satisfies a requirement (pip runs offline "
            "from it): add it with pip download -d wheelhouse -r requirements.txt --only-binary=:all: "
            "--python-version <the base's> --platform manylinux2014_x86_64"
        )
    if not recipe.wheelhouse and any(
        sign in text for sign in ("SSL", "Max retries", "Name or service not known", "Could not fetch")
    ):
        return (
            "the build cannot reach the package index; build offline instead: put the wheels in a "
            "wheelhouse/ directory at the top of the context (see images/README.md)"
        )
    return "check the requirements (names, versions, file syntax) against the output above"
