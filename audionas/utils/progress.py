"""When progress bars show: tqdm's own TQDM_DISABLE switch holds for every bar audionas draws."""

from __future__ import annotations

import os


def progress_off(off: bool = False) -> bool:
    """True when a bar is hidden: `off` (the caller's reason: not the main process, a --no-progress flag, ...)
    or the environment's TQDM_DISABLE (set and not 0/false), which an explicit `disable=` would override."""
    return off or os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false", "no")
