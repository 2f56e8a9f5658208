"""Reading a classic-builder output stream: the current step, its last lines, the images it committed,
and, when the build fails, a BuildError that names the failing step with the end of its output and a hint.

The builder's raw output goes to a log file (``raw``); progress gets plain steps instead: what each
step does (``[7/16] installing the job's requirements``), whether it came from the cache, the sizes
the build step knows (``notes``), and how many packages pip installed.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from runner.images.engine import BuildError, Progress, short
from runner.images.recipe import (
    AGENT_DIR,
    AGENT_VENV,
    BUILD_WHEELHOUSE,
    JOB_DIR,
    REQUIREMENTS,
    RUNNER_DIR,
    BuildRecipe,
)

TAIL_LINES = 15  # lines of the failing step's output in a BuildError
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_STEP = re.compile(r"Step (\d+/\d+) : ")
_INSTALLED = re.compile(r"Successfully installed (.+)")
_IMAGE_ID = re.compile(r"[0-9a-f]{12,64}")
_NONZERO = re.compile(r"The command '.*' returned a non-zero code: (\d+)\Z", re.DOTALL)
_CHATTER = ("Removing intermediate container ", "Successfully built ", "Successfully tagged ")
_STEP_SHOWN = 240  # characters of a step's instruction shown in a message


# The job template's COPY steps by their source, and its RUN steps by a word in them: what each does.
_COPIES = (
    (f"{AGENT_DIR}/", "copying the agent's wheels", "agent-wheels"),
    (f"{BUILD_WHEELHOUSE}/", "copying the job's wheels", "job-wheels"),
    (REQUIREMENTS, "copying the job's requirements", "requirements"),
    (f"{RUNNER_DIR}/", "copying the runner", "runner"),
)
_RUNS = (
    ("apt-get", "installing system packages (spec.image.apt)", "apt"),
    ("getent passwd", "setting up the job's user and directories", "user"),
    ("venv", f"installing the agent's packages into {AGENT_VENV}", "agent"),
    ("requirements.txt", "installing the job's requirements (offline)", "job-install"),
    (".whl", f"installing the runner's agent into {AGENT_VENV}", "runner-install"),
)


def describe_step(instruction: str) -> tuple[str, str] | None:
    """What a step of the job template does, in words, and its kind (a key of BuildLog.notes).

    None for steps not worth saying (ARG, ENV, USER, WORKDIR, ENTRYPOINT, CMD, LABEL).
    """
    verb, _, rest = instruction.partition(" ")
    verb = verb.upper()
    if verb == "FROM":
        return f"base image {rest.strip()}", "base"
    if verb == "COPY":
        for source, words, kind in _COPIES:
            if rest.startswith(source):
                return words, kind
        if f" {JOB_DIR}/ " in f" {rest} ":
            return "copying the job's files", "job-files"
        return f"copying {short(rest, 80)}", "copy"
    if verb == "RUN":
        for word, words, kind in _RUNS:
            if word in rest:
                return words, kind
        return f"running {short(rest, 80)}", "run"
    return None


@dataclass
class BuildLog:
    """Follows a classic-builder output stream: the current step, its last lines, the images it made.

    Every line goes to raw (the build's log file) when given; progress gets the steps in words.
    """

    progress: Progress
    step: str | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    created: list[str] = field(default_factory=list)  # short ids of the images this build committed
    raw: TextIO | None = None
    path: str | None = None  # where raw writes, for errors to point at
    notes: Mapping[str, str] = field(default_factory=dict)  # a step's kind: what to add to its words
    cached: int = 0  # steps that came from the cache
    _partial: str = ""
    _new: bool = False
    _said: str | None = None  # the current step in words, when it is worth saying
    _said_done: bool = True

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
            self._write(text + "\n")

    def _write(self, text: str) -> None:
        if self.raw is not None:
            self.raw.write(text)
            self.raw.flush()

    def _line(self, raw: str) -> None:
        line = _ANSI.sub("", raw).rstrip()
        self._write(line + "\n")
        if not line.strip():
            return
        if _STEP.match(line):
            self._start_step(line)
        elif line.startswith(" ---> "):
            self._step_result(line)
        elif not line.startswith(_CHATTER):
            self.tail.append(line)
            installed = _INSTALLED.match(line.strip())
            if installed:
                self._say()
                count = len(installed.group(1).split())
                self.progress(f"  installed {count} package{'' if count == 1 else 's'}")

    def _start_step(self, line: str) -> None:
        self.step = line
        self.tail.clear()
        # A step's image is new unless it came from the cache, or is the base (FROM).
        instruction = line.split(" : ", 1)[-1]
        self._new = not instruction.startswith("FROM ")
        match = _STEP.match(line)
        described = describe_step(instruction)
        self._said_done = described is None
        if described is None:
            self._said = None
            return
        words, kind = described
        note = self.notes.get(kind)
        self._said = f"[{match.group(1) if match else '?'}] {words}" + (f" ({note})" if note else "")
        if kind == "base":
            self._say()

    def _say(self, suffix: str = "") -> None:
        if self._said is not None and not self._said_done:
            self._said_done = True
            self.progress(self._said + suffix)

    def _step_result(self, line: str) -> None:
        """A `` ---> `` line: the image the step committed, that it used the cache, or runs."""
        rest = line[len(" ---> ") :].strip()
        if _IMAGE_ID.fullmatch(rest):
            if self._new:
                self.created.append(rest)
            self._new = False
            self._say()
        elif rest == "Using cache":
            self._new = False
            self.cached += 1
            self._say(", from the cache")
        elif rest.startswith("Running in "):
            self._say()


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
    if log.path:
        message += f"\nfull build log: {log.path}"
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
    if "No module named venv" in text:
        return (
            f"the base image {recipe.base} has no venv module, which the runner's agent needs for its "
            "environment: choose a base with the full standard library, or add python3-venv to spec.image.apt"
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
    if "No matching distribution" in text or "Could not find a version" in text:
        return (
            "the wheels resolved on this machine do not satisfy pip in the image, which keeps or changes "
            "what the base already has: pin the requirement to the version the base image has, or put "
            "the wheels in a wheelhouse/ directory at the top of the context (see images/README.md)"
        )
    return "check the requirements (names, versions, file syntax) against the output above"
