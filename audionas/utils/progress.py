"""When progress bars show: tqdm's own TQDM_DISABLE switch holds for every bar audionas draws."""

from __future__ import annotations

import os
import sys


def progress_off(off: bool = False) -> bool:
    """True when a bar is hidden: `off` (the caller's reason: not the main process, a --no-progress flag, ...)
    or the environment's TQDM_DISABLE (set and not 0/false), which an explicit `disable=` would override."""
    return off or os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false", "no")


def epoch_bar(steps, total: int, initial: int, desc: str, is_main: bool):
    """The bar of one epoch's steps on the main process (from `initial` on a resume mid-epoch); it goes
    when the epoch ends, which prints its record line instead."""
    from tqdm import tqdm

    return tqdm(steps, total=total, initial=initial, desc=desc, disable=progress_off(not is_main),
                file=sys.stderr, leave=False, dynamic_ncols=True)
