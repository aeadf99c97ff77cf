"""Torch CPU thread counts for a block of work, restored afterwards.

The harness's CPU work (smoke training, checkpoint forensics) is a chain of small ops: one
intra-op thread is as fast on an idle machine and many times faster on a busy one, where
OpenMP threads spin waiting on each other.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Optional

import torch


@contextlib.contextmanager
def cpu_threads(n: Optional[int]) -> Iterator[None]:
    """Run with ``n`` torch intra-op threads (None: leave as is), restoring the count afterwards."""
    previous = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
