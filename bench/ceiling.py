"""The device's matmul ceiling, the denominator of MFU: measured, in the dtype the engine's
matmuls run in (bf16 on CUDA under autocast, fp32 on CPU), timed after a synchronise."""
from __future__ import annotations

import time

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def ceiling_dtype(device: torch.device) -> torch.dtype:
    """The dtype the engine's matmuls run in: bf16 on CUDA (autocast), fp32 on CPU."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def matmul_ceiling(device: torch.device, n: int, iters: int) -> float:
    """Measured matmul FLOP/s of ``device`` in :func:`ceiling_dtype` (n x n by n x n)."""
    a = torch.randn(n, n, device=device, dtype=ceiling_dtype(device))
    b = torch.randn(n, n, device=device, dtype=ceiling_dtype(device))
    for _ in range(3):
        a @ b
    sync(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        a @ b
    sync(device)
    return 2 * n ** 3 * iters / (time.perf_counter() - t0)
