import subprocess
import sys

import pytest

# Run in a fresh interpreter (the test session's own heap must not matter). Prints whether a 64 MB tensor,
# above glibc's largest mmap threshold (32 MB), lives in the brk heap, where freed memory stays with the
# process, rather than in a mapping of its own that glibc unmaps (and the kernel zeroes again) on free.
_PROBE = """
import sys, torch
from audionas.utils.allocator import tune_allocator
tuned = sys.argv[1] == "1" and tune_allocator()
t = torch.empty(16 * 2**20)
addr = t.data_ptr()
in_heap = False
for line in open("/proc/self/maps"):
    if line.rstrip().endswith("[heap]"):
        lo, hi = (int(v, 16) for v in line.split()[0].split("-"))
        in_heap = in_heap or lo <= addr < hi
print(int(tuned), int(in_heap))
"""


def _probe(tune: bool) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", _PROBE, "1" if tune else "0"], capture_output=True, text=True,
                         check=True).stdout.split()
    return int(out[0]), int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_large_tensors_come_from_the_heap_once_tuned():
    assert _probe(tune=True) == (1, 1)
    assert _probe(tune=False) == (0, 0)  # glibc's default: a mapping of its own, unmapped on free


def test_tune_allocator_is_idempotent():
    from audionas.utils.allocator import tune_allocator

    assert tune_allocator() == tune_allocator()
