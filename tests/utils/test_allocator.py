import resource
import sys

import pytest
import torch

from audionas.utils.allocator import tune_allocator


def _faults_while_filling(n_bytes: int) -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = torch.empty(n_bytes // 4)
    t.fill_(1.0)
    del t
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_freed_large_tensor_memory_is_reused_without_page_faults():
    assert tune_allocator()
    assert tune_allocator()  # idempotent
    size = 64 * 2**20  # above glibc's largest mmap threshold (32 MB)
    _faults_while_filling(size)  # first time: the heap grows, pages fault in
    pages = size // resource.getpagesize()
    # Untuned glibc would mmap a fresh block and fault in every one of its `pages` pages again.
    assert _faults_while_filling(size) < pages // 10
