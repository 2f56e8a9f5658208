"""Times as runner's records keep them: one reader for run.json's, which the store and the cluster backend's
pure decisions both read (standard library only, below every layer)."""

from __future__ import annotations

import math
from datetime import datetime


def seconds(value: object) -> float | None:
    """A run.json time (an RFC 3339 string, or version 1's epoch seconds) as seconds; None if not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            return None
        return parsed.timestamp()
    return None
