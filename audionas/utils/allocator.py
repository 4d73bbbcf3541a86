"""Keep freed tensor memory inside the process (glibc): no mmap per large tensor, no trimming of the heap.

Why: glibc serves every allocation above its mmap threshold (at most 32 MB) with a fresh mmap and unmaps it on
free, so each CPU training step page-faults all of its large activations in again and the kernel zeroes them:
benchmarks/asc_train_step.py measured steps ~3x slower that way. This is MALLOC_MMAP_MAX_=0 plus a huge
MALLOC_TRIM_THRESHOLD_, set at run time. The cost: the process keeps its peak heap until it exits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1  # glibc <malloc.h> mallopt parameters
_M_MMAP_MAX = -4
_tuned = False


def tune_allocator() -> bool:
    """Switch glibc malloc to reuse freed memory; True when done (or already done), False elsewhere.

    Affects only later allocations, so call it before building models. No-op on non-glibc systems.
    """
    global _tuned
    if _tuned:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (e.g. musl): leave the allocator alone
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _tuned = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    return _tuned
