"""Training FLOPs per image, counted by ``torch.utils.flop_counter`` on one forward and backward,
and the model FLOP utilisation (MFU) they give at a measured throughput."""
from __future__ import annotations

import torch
from torch import nn

from bench.cases import BenchCase
from bench.workload import input_size, reference_model
from harness.data import Dataset


def training_flops_per_image(case: BenchCase, dataset: Dataset, device: torch.device) -> float:
    """Forward + backward FLOPs of one image (counted on the explicit-attention model, so the
    attention matmuls are counted on every device; SDPA computes the same products)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = reference_model(case, dataset, device)
    size = input_size(case, dataset)
    x = torch.randn(2, dataset.channels, size, size, device=device)
    y = torch.zeros(2, dtype=torch.int64, device=device)
    with FlopCounterMode(display=False) as counter:
        nn.functional.cross_entropy(model(x), y).backward()
    return counter.get_total_flops() / 2


def mfu(img_per_s: float, flops_per_image: float, ceiling: float) -> float:
    """The fraction of the measured matmul ceiling that ``img_per_s`` training images use."""
    return img_per_s * flops_per_image / ceiling
