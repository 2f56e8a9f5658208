"""Submit, status, logs, cancel and artifacts over a Backend, with run records and the store.

The names below are loaded on first use (runner.lazyexports): `runner build` (runner.service.imagebuild)
does not pay for the records, the store and the backends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runner.lazyexports import lazy_exports

if TYPE_CHECKING:
    from runner.service.outcomes import exit_code_of
    from runner.service.runs import RunService

_HOMES = {"RunService": "runner.service.runs", "exit_code_of": "runner.service.outcomes"}

__all__ = ["RunService", "exit_code_of"]

__getattr__ = lazy_exports(__name__, _HOMES)
