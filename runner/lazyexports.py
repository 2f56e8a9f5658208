"""A package's names, loaded from their modules on first use (PEP 562's module ``__getattr__``).

A package that re-exports its modules' names makes whoever imports any one of its modules pay for all
of them. Where that matters (a docker run's supervisor needs runner.render.docker, not pydantic's models;
``runner list --cluster`` needs the Kubernetes conventions, not the manifest checks), the package lists
where each name lives instead and imports that module when the name is first asked for:

    __getattr__ = lazy_exports(__name__, {"render_run": "runner.render.kubernetes.objects", ...})

Type checkers read the names from imports under ``if TYPE_CHECKING:`` beside it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module


def lazy_exports(package: str, homes: Mapping[str, str]) -> Callable[[str], object]:
    """The package's module ``__getattr__``: each name in homes from its module, kept once found."""

    def __getattr__(name: str) -> object:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(home), name)
        setattr(sys.modules[package], name, value)  # asked once: later lookups find it in the module
        return value

    return __getattr__
