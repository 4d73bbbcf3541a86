"""The benchmarks' entry point: a user mistake (an unknown preset, a bad count), a stop (Ctrl-C, SIGTERM) or
running out of memory is one line and a non-zero exit, as in the audionas commands, not a traceback."""

from __future__ import annotations

import signal
import sys
from pathlib import Path


def check_threads(threads: int) -> int:
    """`--threads N` (0 = default) refused above the usable cores: more would time contention, not code."""
    from audionas.errors import UserError
    from audionas.utils.dist import available_cores

    if threads > available_cores():
        raise UserError(f"--threads {threads}: expected at most {available_cores()} (the cores this process "
                        f"may use), or 0 for the default")
    return threads


class _Terminated(BaseException):
    """SIGTERM, raised where the main thread is, so that `finally` blocks stop the workers."""


def _terminated(signum, frame):
    raise _Terminated


def run_main(main) -> None:
    from audionas.errors import UserError

    name = Path(sys.argv[0]).name
    signal.signal(signal.SIGTERM, _terminated)
    try:
        main()
    except UserError as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except _Terminated:
        print(f"{name}: terminated", file=sys.stderr)
        raise SystemExit(143) from None
    except MemoryError:
        print(f"{name}: error: out of memory; try a smaller configuration (see --help)", file=sys.stderr)
        raise SystemExit(1) from None
    except RuntimeError as e:  # torch's allocation failure is a RuntimeError
        if "allocate" not in str(e):
            raise
        print(f"{name}: error: out of memory ({str(e).splitlines()[0]}); try a smaller configuration (see "
              f"--help)", file=sys.stderr)
        raise SystemExit(1) from None
