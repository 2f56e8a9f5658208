"""Build recipes: what goes into a job's image, decided without Docker and without the network.

``render_dockerfile`` fills the template ``runner/images/templates/job.Dockerfile`` (package data, so
it is found the same way in an editable install and in a wheel; top-level ``images/job.Dockerfile``
is a symbolic link to it). ``build_recipe`` adds what the build needs from the job's context: the
files .dockerignore keeps, the requirements, and whether the context brings its own wheelhouse.

Every pip install in the image is offline (``--no-index --find-links``): the job's wheels come from the
context's wheelhouse/ when it has one, otherwise the build step resolves them on the host
(runner.images.wheelhouse); the agent's own packages (AGENT_REQUIREMENTS) are resolved on the host
too and go into a virtual environment of their own, AGENT_VENV, apart from the job's.

The build context a recipe describes (``BuildRecipe.entries``) is laid out so that no name of the
job's can clash with the runner's::

    Dockerfile                               the rendered template
    .runner/runner-<version>-py3-none-any.whl  the runner's wheel, added by the build step
    .runner/agent/...                        the agent's wheels (pip's among them), added by the build step
    .runner/requirements.txt                 the job's requirements (its file, or the list one a line)
    .runner/wheelhouse/...                   the job's wheels: the context's wheelhouse/, or added by the
                                             build step from the host-resolved cache
    job/...                                  every other file the context keeps, copied to /job
"""

from __future__ import annotations

import json
import re
import shlex
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Literal

from runner.errors import UserError
from runner.images.context import IgnoreRules, context_files
from runner.images.wheel import wheel_name
from runner.spec.model import Image, JobManifest, check_container_path

TEMPLATE = "job.Dockerfile"
UID = 1000  # numeric, as Kubernetes' restricted Pod Security Standard needs for runAsNonRoot
WORKDIR = "/job"
WHEELHOUSE = "wheelhouse"  # a directory at the top of the context: pip installs from it, offline
RUNNER_DIR = ".runner"  # the runner's part of the build context
JOB_DIR = "job"  # the job's part of the build context
REQUIREMENTS = f"{RUNNER_DIR}/requirements.txt"
BUILD_WHEELHOUSE = f"{RUNNER_DIR}/{WHEELHOUSE}"
AGENT_DIR = f"{RUNNER_DIR}/agent"
# What runner.agent needs besides the standard library, in its own virtual environment (AGENT_VENV)
# with the runner's wheel (which goes in with --no-deps): boto3 for s3:// stores, with the whole AWS
# credential chain. pip's wheel comes with them: it installs them, so the base needs no pip for it.
AGENT_REQUIREMENTS: tuple[str, ...] = ("boto3>=1.36",)
AGENT_PIP = "pip"
AGENT_VENV = "/opt/runner"

_TMP = "/tmp/runner-build"
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# Docker's reference grammar, loosely: enough to keep anything but a reference out of FROM.
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@+-]*")
# A Debian package, optionally with :arch, =version or /release.
_APT_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]*(:[a-z0-9-]+)?(=[A-Za-z0-9.+~:_-]+|/[A-Za-z0-9.+~_-]+)?")
_WHEEL_NAME = re.compile(r"[A-Za-z0-9_.+!-]+\.whl")
_AGENT_REQUIREMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\[\],<>=!~-]*")
_COMMENT = re.compile(r"(^|\s)#.*$")
_INCLUDE_OPTION = re.compile(r"(-r|-c|--requirement|--constraint)(\s|=|$)|(-r|-c)\S")
_LOCAL_PATH = re.compile(r"((-e|--editable)(\s+|=))?(\.|/|~|file:)")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def runner_wheel_path(version: str) -> str:
    """Where the build step puts the runner's wheel in the build context, for a runner version."""
    return f"{RUNNER_DIR}/{wheel_name(version)}"


def _template_text() -> str:
    return resources.files("runner.images").joinpath("templates", TEMPLATE).read_text(encoding="utf-8")


def fill(template: str, values: Mapping[str, str]) -> str:
    """Replace every ``{{ name }}`` in template; drop ``##`` lines. Unknown or unused names are errors."""
    lines = [line for line in template.splitlines(keepends=True) if not line.startswith("##")]
    text = "".join(lines)
    wanted = set(_PLACEHOLDER.findall(text))
    missing = wanted - set(values)
    unused = set(values) - wanted
    if missing or unused:
        raise ValueError(
            f"template and values disagree: missing values {sorted(missing)}, unused values {sorted(unused)}"
        )
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


def check_base(base: str) -> str:
    if not _REFERENCE.fullmatch(base):
        raise UserError(
            f"spec.image.base: {base!r} is not an image reference",
            hint="write it like tensorflow/tensorflow:2.21.0-gpu or registry.example.com/team/tf@sha256:...",
        )
    return base


def check_apt(packages: Sequence[str]) -> tuple[str, ...]:
    """The apt packages, sorted and without repeats (their order does not matter to apt-get)."""
    for index, package in enumerate(packages):
        if not _APT_PACKAGE.fullmatch(package):
            raise UserError(
                f"spec.image.apt[{index}]: {package!r} is not a Debian package name",
                hint="write names like libgl1 or curl, optionally pinned like curl=7.88.1-10",
            )
    return tuple(sorted(set(packages)))


def check_requirements_text(text: str, where: str, *, wheelhouse: bool) -> str:
    """Refuse what pip cannot do from the one requirements file copied into the build.

    Includes (-r, -c) and local paths name other files, which are not in the image when the
    requirements install (they go in before the job's files, for the layer cache); a URL would send
    pip to the network, and the build installs offline (from the context's wheelhouse/, or from wheels
    resolved on the host).
    """
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _COMMENT.sub("", raw).strip()
        if not line:
            continue
        if _INCLUDE_OPTION.match(line):
            raise UserError(
                f"{where} line {number}: {line!r} includes another file, which the image build cannot follow",
                hint="put every requirement in the one file (or list) that spec.image.requirements names",
            )
        if _LOCAL_PATH.match(line):
            raise UserError(
                f"{where} line {number}: {line!r} names a local path, which is not in the image when "
                "the requirements install",
                hint=f"build a wheel of it (pip wheel -w {WHEELHOUSE} PATH) and name the package",
            )
        # An index option (--extra-index-url URL) is for pip download on the host: the build ignores
        # it (--no-index). With the context's own wheelhouse/ nothing is downloaded: no URL at all.
        if _URL.search(line) and (wheelhouse or not line.startswith("-")):
            source = f"from the context's {WHEELHOUSE}/" if wheelhouse else "from wheels resolved on the host"
            raise UserError(
                f"{where} line {number}: {line!r} needs the network, but the image build installs "
                f"offline, {source}",
                hint=f"put the wheel in a {WHEELHOUSE}/ directory at the top of the context and name the "
                "package instead (an index of your own: configure pip on this machine, pip config set)",
            )
    return text


def list_requirements_text(requirements: Sequence[str]) -> str:
    """The generated requirements file for a list: one item a line."""
    for index, item in enumerate(requirements):
        if not item.strip() or any(char in item for char in "\r\n\x00"):
            raise UserError(f"spec.image.requirements[{index}]: {item!r} is not a one-line pip requirement")
    return "".join(item.strip() + "\n" for item in requirements)


def _has_requirements(image: Image) -> bool:
    return image.requirements is not None and image.requirements != []


def agent_requirements_text(requirements: Sequence[str] = AGENT_REQUIREMENTS) -> str:
    """What the host resolves for the agent's environment: its requirements and pip to install them."""
    return "".join(f"{item}\n" for item in (AGENT_PIP, *requirements))


def _apt_block(packages: tuple[str, ...]) -> str:
    if not packages:
        return "# No apt packages (spec.image.apt is empty)."
    names = "".join(f"        {name} \\\n" for name in packages)
    return (
        "# System packages from spec.image.apt; the package lists are not kept.\n"
        "RUN set -eu; \\\n"
        "    apt-get update; \\\n"
        "    apt-get install -y --no-install-recommends \\\n"
        f"{names}"
        "    ; \\\n"
        "    apt-get clean; \\\n"
        "    rm -rf /var/lib/apt/lists/*"
    )


def _requirements_block(image: Image, wheelhouse: bool) -> str:
    if not _has_requirements(image):
        return "# No Python requirements (spec.image.requirements is not set)."
    source = (
        f"the context's {PurePosixPath(image.requirements).as_posix()}"
        if isinstance(image.requirements, str)
        else "spec.image.requirements"
    )
    wheels = f"the context's {WHEELHOUSE}/" if wheelhouse else "wheels resolved on the host (pip download)"
    return (
        f"# The job's Python requirements ({source}), before its code for the layer cache;\n"
        f"# offline, from {wheels}.\n"
        f"COPY {BUILD_WHEELHOUSE}/ {_TMP}/{WHEELHOUSE}/\n"
        f"COPY {REQUIREMENTS} {_TMP}/requirements.txt\n"
        f"RUN python -m pip install --no-index --find-links {_TMP}/{WHEELHOUSE} \\\n"
        f"        -r {_TMP}/requirements.txt \\\n"
        f"    && rm -rf {_TMP}"
    )


def _agent_block(requirements: Sequence[str]) -> str:
    for item in requirements:
        if not _AGENT_REQUIREMENT.fullmatch(item):
            raise ValueError(f"agent requirement {item!r} is not a plain pip requirement")
    names = " ".join(shlex.quote(r) for r in requirements)
    wheels = f"{_TMP}/agent"
    return (
        f"# The runner's agent in a virtual environment of its own, {AGENT_VENV}, apart from the job's\n"
        f"# packages; its packages from wheels resolved on the host, installed by pip's own wheel (kept\n"
        f"# for the runner's wheel below), so this needs neither the network nor pip in the base.\n"
        f"COPY {AGENT_DIR}/ {wheels}/\n"
        f"RUN set -eu; \\\n"
        f"    python -m venv --without-pip {AGENT_VENV}; \\\n"
        f"    cp {wheels}/{AGENT_PIP}-*.whl {AGENT_VENV}/pip.whl; \\\n"
        f"    {AGENT_VENV}/bin/python {AGENT_VENV}/pip.whl/pip install --no-index --find-links {wheels} \\\n"
        f"        --disable-pip-version-check --no-cache-dir {names}; \\\n"
        f"    rm -rf {_TMP}"
    )


def _check_wheel(runner_wheel: str) -> str:
    path = PurePosixPath(runner_wheel)
    if path.is_absolute() or ".." in path.parts or not _WHEEL_NAME.fullmatch(path.name):
        raise ValueError(f"runner_wheel {runner_wheel!r}: expected a relative path to a .whl file")
    return path.as_posix()


def render_dockerfile(
    image: Image,
    command: Sequence[str],
    *,
    runner_wheel: str,
    wheelhouse: bool,
    outputs: str = "/outputs",
    agent_requirements: Sequence[str] = AGENT_REQUIREMENTS,
) -> str:
    """The job's Dockerfile. Pure: the same arguments give the same text."""
    if not command:
        raise UserError("spec.command: the job needs a command")
    if isinstance(image.requirements, list):
        list_requirements_text(image.requirements)
        check_requirements_text(
            "\n".join(image.requirements), "spec.image.requirements", wheelhouse=wheelhouse
        )
    wheel = _check_wheel(runner_wheel)
    values = {
        "base": check_base(image.base),
        "apt": _apt_block(check_apt(image.apt)),
        "requirements": _requirements_block(image, wheelhouse),
        "agent": _agent_block(agent_requirements),
        "agent_venv": AGENT_VENV,
        "runner_wheel": wheel,
        "runner_wheel_name": PurePosixPath(wheel).name,
        "uid": str(UID),
        "workdir": WORKDIR,
        "outputs": shlex.quote(check_container_path(outputs)),
        # JSON form: no shell, no variable substitution; ensure_ascii keeps the line plain.
        "command": json.dumps(list(command)),
    }
    return fill(_template_text(), values)


@dataclass(frozen=True)
class BuildEntry:
    """One member of the build context.

    ``source`` is a path in the job's context to copy (a file, or a symbolic link copied as a link),
    ``data`` generated content, and neither for a directory. ``mode`` is what the build context must
    carry, normalised so that only the executable bit of the original counts (0755 or 0644).
    """

    name: str
    kind: Literal["file", "symlink", "dir"]
    mode: int = 0o644
    source: str | None = None
    data: bytes | None = None


@dataclass(frozen=True)
class BuildRecipe:
    """Everything that decides a job's image, and the files to send to the build."""

    job: str
    base: str
    apt: tuple[str, ...]  # sorted, no repeats
    requirements: str | tuple[str, ...] | None  # a context-relative file, a list, or none
    requirements_text: str | None  # what .runner/requirements.txt holds
    command: tuple[str, ...]
    outputs: str
    wheelhouse: bool  # the context has a wheelhouse/ directory: the job's wheels come from it
    runner_wheel: str  # where the build step puts the runner's wheel in the build context
    files: tuple[str, ...]  # every file of the context that .dockerignore keeps, sorted, POSIX
    dockerfile: str
    agent_requirements: tuple[str, ...] = AGENT_REQUIREMENTS

    @property
    def host_wheels(self) -> bool:
        """Whether the build step resolves the job's wheels on the host (requirements, no wheelhouse/)."""
        return self.requirements_text is not None and not self.wheelhouse

    @property
    def job_files(self) -> tuple[str, ...]:
        """The context files copied to the job's directory: all but the wheelhouse."""
        prefix = WHEELHOUSE + "/"
        if not self.wheelhouse:
            return self.files
        return tuple(name for name in self.files if not name.startswith(prefix))

    def entries(self, context_dir: Path) -> list[BuildEntry]:
        """The build context, except the runner's wheel (``runner_wheel``, added by the build step).

        Reads only file modes (lstat); contents stay where they are, for the build step to stream.
        """
        out = [
            BuildEntry("Dockerfile", "file", data=self.dockerfile.encode()),
            BuildEntry(RUNNER_DIR, "dir", 0o755),
        ]
        if self.requirements_text is not None:
            out.append(BuildEntry(REQUIREMENTS, "file", data=self.requirements_text.encode()))
        if self.wheelhouse and self.requirements_text is not None:
            out.append(BuildEntry(BUILD_WHEELHOUSE, "dir", 0o755))
            prefix = WHEELHOUSE + "/"
            out.extend(
                _file_entry(context_dir, name, f"{RUNNER_DIR}/{name}")
                for name in self.files
                if name.startswith(prefix)
            )
        out.append(BuildEntry(JOB_DIR, "dir", 0o755))
        out.extend(_file_entry(context_dir, name, f"{JOB_DIR}/{name}") for name in self.job_files)
        return out


def normal_mode(st_mode: int) -> int:
    """0755 when the owner may execute the file (as git decides), 0644 otherwise."""
    return 0o755 if st_mode & stat.S_IXUSR else 0o644


def _file_entry(context_dir: Path, name: str, target: str) -> BuildEntry:
    info = (context_dir / name).lstat()
    if stat.S_ISLNK(info.st_mode):
        return BuildEntry(target, "symlink", 0o777, source=name)
    return BuildEntry(target, "file", normal_mode(info.st_mode), source=name)


def has_wheelhouse(context_dir: Path, files: Iterable[str]) -> bool:
    """Air-gapped mode: wheelhouse/ is a real directory at the top of the context, kept by .dockerignore."""
    if any(name.startswith(WHEELHOUSE + "/") for name in files):
        return True
    try:
        is_dir = stat.S_ISDIR((context_dir / WHEELHOUSE).lstat().st_mode)
    except FileNotFoundError:
        return False
    return is_dir and not IgnoreRules.for_context(context_dir).excluded(WHEELHOUSE)


def _requirements_file(context_dir: Path, declared: str, files: tuple[str, ...]) -> tuple[str, str]:
    """The normalised context-relative path of the requirements file, and its text."""
    where = f"spec.image.requirements: {declared!r}"
    path = PurePosixPath(declared)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise UserError(f"{where} must be a path inside the context, like requirements.txt")
    name = path.as_posix()
    if name not in files:
        raise UserError(
            f"{where} is not in the context {context_dir}",
            hint="the path is relative to spec.image.context; check .dockerignore does not exclude it",
        )
    full = context_dir / name
    if not stat.S_ISREG(full.lstat().st_mode):
        raise UserError(f"{where} is a symbolic link; it must be a regular file in the context")
    try:
        text = full.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{where} is not UTF-8 text") from None
    except OSError as error:
        raise UserError(f"{where} cannot be read: {error.strerror or error}") from None
    return name, text


def build_recipe(
    manifest: JobManifest,
    context_dir: Path,
    *,
    runner_version: str,
    skip: Iterable[Path] = (),
    agent_requirements: Sequence[str] = AGENT_REQUIREMENTS,
) -> BuildRecipe:
    """The recipe of a job's image from its manifest and its context (read, never written).

    context_dir is spec.image.context resolved against the manifest's directory; directories in
    skip (the runner's home, when it lies inside the context) are left out like ignored ones.
    """
    if not context_dir.is_dir():
        raise UserError(f"spec.image.context: {context_dir} is not a directory")
    image = manifest.spec.image
    try:
        files = tuple(context_files(context_dir, skip=skip))
    except OSError as error:
        raise UserError(
            f"spec.image.context: cannot read {error.filename or context_dir}: {error.strerror or error}",
            hint="make it readable, or leave it out with .dockerignore",
        ) from None
    wheelhouse = has_wheelhouse(context_dir, files)
    requirements: str | tuple[str, ...] | None
    if isinstance(image.requirements, str):
        requirements, text = _requirements_file(context_dir, image.requirements, files)
        check_requirements_text(text, f"spec.image.requirements: {requirements}", wheelhouse=wheelhouse)
        requirements_text: str | None = text
    elif image.requirements:
        requirements = tuple(image.requirements)
        requirements_text = list_requirements_text(image.requirements)
    else:
        requirements, requirements_text = None, None
    runner_wheel = runner_wheel_path(runner_version)
    dockerfile = render_dockerfile(
        image,
        manifest.spec.command,
        runner_wheel=runner_wheel,
        wheelhouse=wheelhouse,
        outputs=manifest.spec.outputs.path,
        agent_requirements=agent_requirements,
    )
    return BuildRecipe(
        job=manifest.name,
        base=image.base,
        apt=check_apt(image.apt),
        requirements=requirements,
        requirements_text=requirements_text,
        command=tuple(manifest.spec.command),
        outputs=manifest.spec.outputs.path,
        wheelhouse=wheelhouse,
        runner_wheel=runner_wheel,
        files=files,
        dockerfile=dockerfile,
        agent_requirements=tuple(agent_requirements),
    )
