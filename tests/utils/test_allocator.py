import subprocess
import sys

import pytest

# Run in a fresh interpreter: the test session's own heap state (arenas, fragmentation) must not matter.
_PROBE = """
import resource, sys, torch
from audionas.utils.allocator import tune_allocator
def faults(n_bytes):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = torch.empty(n_bytes // 4)
    t.fill_(1.0)
    del t
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
tuned = sys.argv[1] == "1" and tune_allocator()
size = 64 * 2**20  # above glibc's largest mmap threshold (32 MB)
faults(size)  # first time: pages fault in
print(int(tuned), faults(size), size // resource.getpagesize())
"""


def _second_fill_faults(tune: bool) -> tuple[int, int, int]:
    out = subprocess.run([sys.executable, "-c", _PROBE, "1" if tune else "0"], capture_output=True, text=True,
                         check=True).stdout.split()
    return tuple(int(v) for v in out)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_freed_large_tensor_memory_is_reused_without_page_faults():
    tuned, faults, pages = _second_fill_faults(tune=True)
    assert tuned == 1
    assert faults < pages // 10
    _, faults_default, _ = _second_fill_faults(tune=False)
    assert faults_default > pages // 2  # glibc's default: a fresh mmap, every page faults again


def test_tune_allocator_is_idempotent():
    from audionas.utils.allocator import tune_allocator

    assert tune_allocator() == tune_allocator()
