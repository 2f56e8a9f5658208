"""The runner's own wheel, for job images: built here, offline, from the installed package.

Job images install the runner with ``pip install --no-deps --no-index`` so that the agent
(``/opt/runner/bin/python -m runner.agent``) runs inside them. The wheel is written directly with zipfile: the
runner is pure Python, so a wheel is its package files plus ``runner-<version>.dist-info/`` with
METADATA, WHEEL and RECORD (PEP 427, PEP 376). No build backend, no build isolation, no network.

``runner_version()`` names the exact code: the release plus a short hash of the package's files,
``0.1.0+g1a2b3c4d5e``, so that a changed runner changes the image tags that include it. The wheel
declares no dependencies (what the agent needs, boto3, goes into its environment from
AGENT_REQUIREMENTS in recipe.py) and is byte-for-byte reproducible: the same files give the same
wheel, so Docker's layer cache for the COPY of it holds across rebuilds.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import os
import tempfile
import zipfile
from pathlib import Path

import runner

DISTRIBUTION = "runner"
HASH_LENGTH = 10  # hex characters of the source hash in the version's local segment
KEEP_WHEELS = 4  # wheels of other versions kept in the cache, newest first
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry: reproducible archives
_SKIP_DIRS = {"__pycache__"}
_SKIP_SUFFIXES = (".pyc", ".pyo")


def package_root() -> Path:
    """The directory of the runner package this process runs."""
    return Path(runner.__file__).resolve().parent


def package_files(root: Path | None = None) -> list[str]:
    """The package's files as sorted POSIX paths relative to its parent: ``runner/__init__.py``, ...

    Every regular file below the package (modules, py.typed, templates), less byte code, caches and
    hidden files. Symbolic links are followed, as a wheel holds files, not links.
    """
    root = package_root() if root is None else root
    found: list[str] = []
    for directory, subdirectories, names in os.walk(root):
        subdirectories[:] = [d for d in subdirectories if d not in _SKIP_DIRS and not d.startswith(".")]
        relative = Path(directory).relative_to(root.parent)
        for name in names:
            if name.startswith(".") or name.endswith(_SKIP_SUFFIXES):
                continue
            if (Path(directory) / name).is_file():
                found.append((relative / name).as_posix())
    return sorted(found)


def source_digest(root: Path | None = None) -> str:
    """sha256 (hex) over every package file's path and content, each framed by its length."""
    root = package_root() if root is None else root
    digest = hashlib.sha256(b"runner-source/v1")
    for name in package_files(root):
        data = (root.parent / name).read_bytes()
        label = name.encode()
        digest.update(len(label).to_bytes(4, "big") + label + len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


@functools.cache
def runner_version() -> str:
    """The release and a short hash of this runner's files, e.g. ``0.1.0+g1a2b3c4d5e`` (PEP 440)."""
    release = runner.__version__.split("+", 1)[0]
    return f"{release}+g{source_digest()[:HASH_LENGTH]}"


def wheel_name(version: str) -> str:
    # PEP 427: the distribution and version components spell '-' as '_'.
    return f"{DISTRIBUTION}-{version.replace('-', '_')}-py3-none-any.whl"


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _metadata(version: str) -> bytes:
    return (
        "Metadata-Version: 2.1\n"
        f"Name: {DISTRIBUTION}\n"
        f"Version: {version}\n"
        "Summary: A batch-job runner for GPU clusters (built into job images for its agent)\n"
        "Requires-Python: >=3.11\n"
    ).encode()


def _wheel_file() -> bytes:
    return b"Wheel-Version: 1.0\nGenerator: runner.images.wheel\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def wheel_bytes(version: str | None = None, root: Path | None = None) -> bytes:
    """The wheel as bytes. Reproducible: fixed times and modes, sorted members."""
    version = runner_version() if version is None else version
    root = package_root() if root is None else root
    dist_info = f"{DISTRIBUTION}-{version.replace('-', '_')}.dist-info"
    members = [(name, (root.parent / name).read_bytes()) for name in package_files(root)]
    members.append((f"{dist_info}/METADATA", _metadata(version)))
    members.append((f"{dist_info}/WHEEL", _wheel_file()))
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in members)
    record += f"{dist_info}/RECORD,,\n"
    members.append((f"{dist_info}/RECORD", record.encode()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.external_attr = 0o100644 << 16  # a regular file, rw-r--r--
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


def runner_wheel(cache_dir: Path) -> Path:
    """The wheel of this runner in cache_dir, written once per version (atomically) and reused."""
    version = runner_version()
    path = cache_dir / wheel_name(version)
    if path.is_file():
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    data = wheel_bytes(version)
    descriptor, temporary = tempfile.mkstemp(prefix=".wheel-", dir=cache_dir)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        Path(temporary).chmod(0o644)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _prune(cache_dir, keep=path)
    return path


def _prune(cache_dir: Path, keep: Path) -> None:
    """Drop all but the newest few wheels of other versions; another process may be using one."""
    others = [p for p in cache_dir.glob(f"{DISTRIBUTION}-*.whl") if p != keep]
    try:
        others.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    except FileNotFoundError:
        return
    for old in others[KEEP_WHEELS:]:
        old.unlink(missing_ok=True)
