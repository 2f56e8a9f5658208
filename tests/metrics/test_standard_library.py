"""runner.metrics ships in job images with the agent, installed without dependencies: its modules import
the standard library and each other only (and the callback Keras, which the job brings)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import runner.metrics

PACKAGE = Path(runner.metrics.__file__).parent


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def outside(names: set[str]) -> set[str]:
    return {
        name
        for name in names
        if name.split(".")[0] not in sys.stdlib_module_names
        and name.split(".")[0] != "__future__"
        and not (name == "runner.metrics" or name.startswith("runner.metrics."))
    }


def test_the_package_imports_only_the_standard_library_and_itself() -> None:
    strays = {
        path.name: outside(imported(path)) for path in PACKAGE.glob("*.py") if path.name != "callback.py"
    }
    assert {name: found for name, found in strays.items() if found} == {
        "gpu.py": {"pynvml"}
    }  # optional, guarded


def test_the_callback_adds_keras_only() -> None:
    assert outside(imported(PACKAGE / "callback.py")) == {"keras"}
