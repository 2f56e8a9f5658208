"""The Python a base image runs, learned once per base image and cached: what ``pip download`` targets.

Job images install their packages offline from wheels resolved on the host (runner.images.wheelhouse),
so the host must know the base image's Python: its version, implementation, ABI and the platform
tags its wheels may carry (manylinux for its glibc and machine, or musllinux). ``python_target`` runs
the base's ``python`` (or ``python3``) once, without a network, and keeps the answer under the cache
directory by the base image's id: a re-tagged base is learned again, an unchanged one never.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.images.engine import BuildError, engine_errors, short

if TYPE_CHECKING:
    import docker

SCHEME = 1  # bump when the probe or the cached form changes
LEARN_TIMEOUT_S = 120

# Printed by the base's Python: one JSON line. Standard library only; works on 3.6 and later.
_PROBE = """\
import json, os, platform, sys
libc = ""
try:
    libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
except (AttributeError, ValueError, OSError):
    pass
print(json.dumps({
    "version": "%d.%d" % sys.version_info[:2],
    "implementation": sys.implementation.name,
    "machine": platform.machine(),
    "libc": libc,
    "musl": platform.libc_ver()[0] == "" and os.path.exists("/lib/ld-musl-" + platform.machine() + ".so.1"),
}))
"""
_SHELL = 'exec "$(command -v python || command -v python3)" -I -c "$0"'
_ABBREVIATIONS = {"cpython": "cp", "pypy": "pp"}
_OLD_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


@dataclass(frozen=True)
class PythonTarget:
    """What pip download needs to fetch wheels for another interpreter."""

    version: str  # "3.11"
    implementation: str  # "cp"
    abi: str  # "cp311"
    platforms: tuple[str, ...]  # most specific first: manylinux_2_36_x86_64, ..., manylinux2014_x86_64

    @property
    def key(self) -> str:
        """The target in a form fit for hashing and for saying: ``cp311-cp311-manylinux_2_36_x86_64``."""
        return f"{self.implementation}{self.version.replace('.', '')}-{self.abi}-{','.join(self.platforms)}"

    def describe(self) -> str:
        return f"Python {self.version} ({self.platforms[0] if self.platforms else 'any platform'})"

    def pip_options(self) -> list[str]:
        options = [
            "--only-binary=:all:",
            "--python-version",
            self.version,
            "--implementation",
            self.implementation,
            "--abi",
            self.abi,
        ]
        for platform in self.platforms:
            options += ["--platform", platform]
        return options


def target_from_probe(found: dict[str, Any]) -> PythonTarget:
    """The pip target for what the probe printed (pure)."""
    version = str(found["version"])
    implementation = _ABBREVIATIONS.get(str(found["implementation"]), str(found["implementation"]))
    machine = str(found["machine"]) or "x86_64"
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine.lower(), machine)
    abi = f"{implementation}{version.replace('.', '')}"
    platforms = platform_tags(machine, str(found["libc"]), found["musl"])
    return PythonTarget(version, implementation, abi, platforms)


def platform_tags(machine: str, libc: str, musl: Any) -> tuple[str, ...]:
    """The wheel platform tags a Linux interpreter on machine with libc ("glibc 2.36") accepts."""
    if musl:
        return tuple(f"musllinux_1_{minor}_{machine}" for minor in range(2, -1, -1))
    minor = 17
    parts = libc.split()
    if len(parts) == 2 and parts[0] == "glibc":
        with contextlib.suppress(IndexError, ValueError):
            minor = int(parts[1].split(".")[1])
    tags = []
    for glibc in range(minor, 4, -1):
        tags.append(f"manylinux_2_{glibc}_{machine}")
        if glibc in _OLD_MANYLINUX and machine in ("x86_64", "i686"):
            tags.append(f"{_OLD_MANYLINUX[glibc]}_{machine}")
        elif glibc == 17:
            tags.append(f"manylinux2014_{machine}")
    return tuple(tags)


def python_target(client: docker.DockerClient, base: str, image_id: str, cache_dir: Path) -> PythonTarget:
    """The base image's Python target, from the cache or learned by running it once (no network)."""
    path = cache_dir / f"{image_id.removeprefix('sha256:')[:32]}-v{SCHEME}.json"
    try:
        cached = json.loads(path.read_text())
        return PythonTarget(
            cached["version"], cached["implementation"], cached["abi"], tuple(cached["platforms"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        pass
    target = target_from_probe(_probe(client, base))
    cache_dir.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=".target-", dir=cache_dir)
    with os.fdopen(descriptor, "w") as file:
        json.dump({**asdict(target), "base": base}, file)
    Path(temporary).replace(path)
    return target


def _probe(client: docker.DockerClient, base: str) -> dict[str, Any]:
    try:
        output = client.containers.run(
            base,
            entrypoint=["sh", "-c", _SHELL],
            command=[_PROBE],
            network_disabled=True,
            remove=True,
            user="0",
            stdout=True,
            stderr=True,
        )
    except engine_errors() as error:
        raise BuildError(
            f"cannot learn the Python of base image {base}: running it failed: {short(str(error))}",
            hint="the base needs sh and python (or python3) on its PATH: choose a base with Python 3.11+",
        ) from None
    text = output.decode(errors="replace") if isinstance(output, bytes) else str(output)
    for line in reversed(text.strip().splitlines()):
        try:
            found = json.loads(line)
        except ValueError:
            continue
        if isinstance(found, dict) and "version" in found:
            return found
    raise BuildError(
        f"cannot learn the Python of base image {base}: it printed {short(text, 200)!r}",
        hint="the base needs python (or python3) on its PATH",
    )
