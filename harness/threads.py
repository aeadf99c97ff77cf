"""Torch CPU thread counts for a block of work, restored afterwards.

The harness's CPU work (smoke training, checkpoint forensics) is a chain of small ops: one
intra-op thread is as fast on an idle machine and many times faster on a busy one, where
OpenMP threads spin waiting on each other.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Optional

# CPU intra-op threads for runs. The CPU models (smoke) are too small to gain from more, and
# OpenMP threads collapse when the cores are shared: measured on the 2-core CI machine class
# with other processes running, 3 smoke epochs took 5.5 s with 1 thread and 91.6 s with 2.
DEFAULT_THREADS = 1


@contextlib.contextmanager
def cpu_threads(n: Optional[int]) -> Iterator[None]:
    """Run with ``n`` torch intra-op threads (None: leave as is), restoring the count afterwards."""
    import torch   # here, so the option layer reads DEFAULT_THREADS without importing torch

    previous = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
