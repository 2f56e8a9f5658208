"""Files a job wrote outside its outputs, on this machine: the process backend is no sandbox.

A process-backend job runs as the submitting user with the run's work directory around it: it can write
`$RUNNER_OUTPUTS/../outside.txt`, or a model into its working directory (the context's copy), and neither
is collected. What such a job left in the work directory is found here when the run is collected, so the
run can say so instead of losing it silently. Anything it wrote elsewhere on the machine is not looked for.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# what the runner itself keeps in a work directory, beside context/, outputs/ and logs/
# (and workers/, where a multi-worker run's workers other than the chief keep their outputs and logs)
_OWN = re.compile(r"(context|outputs|logs|workers|supervisor\.log|attempt-\d+\.exit(\.part)?)")
MAX_WALK = 20_000  # entries of the context copy looked at; a bigger one is not searched to the end
MAX_NAMED = 10


def written_outside(root: Path, since: float) -> list[str]:
    """Paths (relative to the work directory) the job wrote outside outputs/: entries of the work
    directory the runner does not make, and files of context/ changed at or after `since` (the context
    is copied with its files' own times, before the job starts)."""
    found: list[str] = []
    try:
        names = sorted(entry.name for entry in root.iterdir())
    except OSError:
        return found
    found.extend(name for name in names if not _OWN.fullmatch(name))
    seen = 0
    for directory, dirs, files in os.walk(root / "context"):
        dirs.sort()
        for name in sorted(files):
            seen += 1
            if seen > MAX_WALK:
                return found
            path = Path(directory, name)
            try:
                changed = path.lstat().st_mtime
            except OSError:
                continue
            if changed >= since:
                found.append(str(path.relative_to(root)))
    return found


def describe(paths: list[str], root: Path) -> str:
    """The run message's note for them."""
    named = ", ".join(paths[:MAX_NAMED])
    if len(paths) > MAX_NAMED:
        named += f" and {len(paths) - MAX_NAMED} more"
    return (
        f"the job wrote outside its outputs, and that is not collected: {named} (in {root}; its context "
        "copy is removed after collection): write results under $RUNNER_OUTPUTS"
    )
