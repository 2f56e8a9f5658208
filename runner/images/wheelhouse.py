"""Requirements resolved on the host: ``pip download`` for a job image's Python, into a cached wheelhouse.

Image builds never reach a package index: pip inside a build often cannot (a proxy with its own CA,
an air-gapped or corporate-proxied fleet), while pip on the host can, with the host's own configuration
(index, proxy, certificates). ``wheelhouse_for`` downloads binary wheels for a requirement set and a
target (runner.images.target) into ``<cache>/<key>/``, where key hashes both, once: a later build of the
same set for the same target finds it complete and downloads nothing. The build copies the wheels in
and installs with ``pip install --no-index --find-links``. pip's output goes to a log file; progress
gets plain steps (what is resolved, each download with its size, the total).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from runner.config import format_size
from runner.images.engine import BuildError, Progress
from runner.images.target import PythonTarget

SCHEME = b"runner-wheelhouse/v1"
COMPLETE = ".complete"  # written last: its presence marks a wheelhouse whole
DOWNLOAD_TIMEOUT_S = 3600.0
KEEP_WHEELHOUSES = 16  # wheelhouses kept, most recently used first
_COMMENT = re.compile(r"(^|\s)#.*$")
_DOWNLOADING = re.compile(r"^\s*Downloading (\S+?)(?: \(([^)]+)\))?\s*$")
_COLLECTING = re.compile(r"^\s*Collecting (\S+)")
_SAVED = re.compile(r"^\s*(?:Saved|File was already downloaded) (\S+)")

Runner = Callable[[Sequence[str], Path, Progress], int]  # pip download's argv, its log, progress: exit code


@dataclass(frozen=True)
class Wheelhouse:
    path: Path
    wheels: tuple[str, ...]  # file names, sorted
    size: int  # bytes, all wheels together
    downloaded: bool  # False when the cache already held it

    def files(self) -> list[Path]:
        return [self.path / name for name in self.wheels]


def effective_requirements(text: str) -> list[str]:
    """The requirement lines of a requirements file: comments and blank lines left out."""
    return [line for raw in text.splitlines() if (line := _COMMENT.sub("", raw).strip())]


def wheelhouse_key(requirements_text: str, target: PythonTarget) -> str:
    """A name for the wheelhouse of this requirement set on this target (hex, 24 characters)."""
    digest = hashlib.sha256(SCHEME)
    for part in ("\n".join(effective_requirements(requirements_text)), target.key):
        data = part.encode()
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()[:24]


def wheelhouse_for(
    requirements_text: str,
    target: PythonTarget,
    cache_dir: Path,
    *,
    what: str,
    progress: Progress,
    log: Path,
    run: Runner | None = None,
) -> Wheelhouse:
    """The wheels for requirements_text on target, from cache_dir or downloaded there now.

    what says whose requirements these are ("the job's requirements"); pip's own output goes to log,
    and an error names log with the end of pip's output.
    """
    path = cache_dir / wheelhouse_key(requirements_text, target)
    found = _complete(path)
    if found is not None:
        os.utime(path)  # most recently used
        return found
    if not effective_requirements(requirements_text):
        path.mkdir(parents=True, exist_ok=True)
        (path / COMPLETE).write_text("")
        return Wheelhouse(path, (), 0, False)
    cache_dir.mkdir(parents=True, exist_ok=True)
    progress(f"resolving {what} on this machine for {target.describe()} (pip download)")
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix=".download-", dir=cache_dir))
    try:
        requirements = scratch / "requirements.txt"
        requirements.write_text(requirements_text)
        wheels = scratch / "wheels"
        wheels.mkdir()
        argv = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--disable-pip-version-check",
            "--no-input",
            "--progress-bar",
            "off",
            *target.pip_options(),
            "--dest",
            str(wheels),
            "-r",
            str(requirements),
        ]
        code = (run or run_pip)(argv, log, progress)
        if code != 0:
            raise _download_error(what, target, log, code)
        (wheels / COMPLETE).write_text("")
        try:
            wheels.rename(path)
        except OSError:  # another build finished the same wheelhouse first
            if _complete(path) is None:
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _prune(cache_dir, keep=path)
    done = _complete(path)
    assert done is not None
    progress(
        f"{what}: {plural(len(done.wheels), 'wheel')}, {format_size(done.size)}, "
        f"resolved in {time.monotonic() - started:.1f}s (cached in {path})"
    )
    return Wheelhouse(done.path, done.wheels, done.size, True)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _complete(path: Path) -> Wheelhouse | None:
    if not (path / COMPLETE).is_file():
        return None
    wheels = sorted(p.name for p in path.iterdir() if p.name.endswith(".whl"))
    size = sum((path / name).stat().st_size for name in wheels)
    return Wheelhouse(path, tuple(wheels), size, False)


def run_pip(argv: Sequence[str], log: Path, progress: Progress) -> int:
    """Run pip download with its output in log; each download said in progress as it starts."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8") as out:
        out.write("$ " + " ".join(argv) + "\n")
        out.flush()
        try:
            process = subprocess.Popen(
                list(argv),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                errors="replace",
            )
        except OSError as error:
            out.write(f"cannot start pip: {error}\n")
            return 127
        assert process.stdout is not None
        deadline = time.monotonic() + DOWNLOAD_TIMEOUT_S
        try:
            for line in process.stdout:
                out.write(line)
                said = pip_progress(line)
                if said:
                    progress(said)
                if time.monotonic() > deadline:
                    process.kill()
                    out.write(f"pip download ran past {DOWNLOAD_TIMEOUT_S:.0f}s and was stopped\n")
                    break
        except BaseException:  # Ctrl-C, or `runner cancel` of the building run: pip goes too
            process.kill()
            process.wait()
            raise
        return process.wait()


def pip_progress(line: str) -> str | None:
    """What a line of pip download's output says in a plain step, or None for lines not worth a step."""
    match = _DOWNLOADING.match(line)
    if match:
        name = match.group(1).rsplit("/", 1)[-1]
        size = f" ({match.group(2)})" if match.group(2) else ""
        return f"  downloading {name}{size}"
    return None


def _download_error(what: str, target: PythonTarget, log: Path, code: int) -> BuildError:
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-12:]
    except OSError:
        lines = []
    text = "\n".join(lines)
    if "No matching distribution" in text or "Could not find a version" in text:
        hint = (
            f"a requirement has no binary wheel for {target.describe()}: pin a version that has one, "
            "or put a wheel you built (pip wheel) in a wheelhouse/ directory at the top of the context"
        )
    elif any(sign in text for sign in ("SSL", "Max retries", "Name or service not known", "ProxyError")):
        hint = (
            "pip on this machine cannot reach the package index: check its configuration (pip config "
            "list; PIP_INDEX_URL, proxy, certificates), or put the wheels in a wheelhouse/ directory at "
            "the top of the context"
        )
    elif "No module named pip" in text:
        hint = "install pip next to the runner (python -m ensurepip)"
    else:
        hint = "check the requirements (names, versions, syntax) against pip's output"
    message = f"resolving {what} for {target.describe()} failed (pip download exited with code {code})"
    if lines:
        message += "\nlast lines of its output:\n" + "\n".join(f"  | {line}" for line in lines)
    message += f"\nfull log: {log}"
    return BuildError(message, hint=hint, step=f"pip download {what}", output=lines)


def _prune(cache_dir: Path, keep: Path) -> None:
    """Drop the least recently used wheelhouses beyond the newest few; never one being written."""
    found = [p for p in cache_dir.iterdir() if p.is_dir() and not p.name.startswith(".") and p != keep]
    try:
        found.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    except FileNotFoundError:
        return
    for old in found[KEEP_WHEELHOUSES - 1 :]:
        shutil.rmtree(old, ignore_errors=True)
