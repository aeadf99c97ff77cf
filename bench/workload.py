"""What a case trains on: its dataset (a real one, or random images of CIFAR-10's shape, since
throughput does not depend on pixel values), the reference loop's model, and the input size."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from bench.cases import BenchCase
from harness.data import Dataset, Split, load_dataset
from harness.data.cifar import STATISTICS as CIFAR_STATISTICS
from harness.models import create_model
from harness.runs import batches_for
from harness.spec import RunSpec

CIFAR10_TRAIN, CIFAR10_TEST = 50_000, 10_000


def bench_dataset(case: BenchCase, data_root: Optional[Path]) -> Dataset:
    if case.dataset != "digits" and data_root is None:
        dataset = random_cifar_shaped()
    else:
        dataset = load_dataset(case.dataset, data_root)
    return replace(dataset, train=head(dataset.train, case.train_n), test=head(dataset.test, case.test_n))


def full_sizes(case: BenchCase) -> tuple[int, int]:
    """(train, test) images of the case's whole dataset: what an epoch of the schedule holds."""
    if case.dataset == "digits":
        digits = load_dataset("digits")
        return len(digits.train), len(digits.test)
    return CIFAR10_TRAIN, CIFAR10_TEST


def random_cifar_shaped() -> Dataset:
    g = torch.Generator().manual_seed(0)

    def split(n: int) -> Split:
        return Split(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g),
                     torch.randint(0, 10, (n,), generator=g))

    mean, std = CIFAR_STATISTICS["cifar10"]
    return Dataset(name="cifar10", num_classes=10, train=split(CIFAR10_TRAIN), test=split(CIFAR10_TEST),
                   mean=mean, std=std, flip=True,
                   source=f"random uint8 of CIFAR-10's shape ({CIFAR10_TRAIN:,} train / "
                          f"{CIFAR10_TEST:,} test)")


def head(split: Split, n: Optional[int]) -> Split:
    return split if n is None or n >= len(split) else Split(split.images[:n], split.labels[:n])


def reference_model(case: BenchCase, dataset: Dataset, device: torch.device) -> nn.Module:
    """The case's model with timm's explicit attention (q @ k^T, softmax, @ v) instead of SDPA."""
    model = create_model(case.model, dataset.num_classes, dataset.channels)
    for module in model.modules():
        if hasattr(module, "fused_attn"):
            module.fused_attn = False
    return model.to(device)


def input_size(case: BenchCase, dataset: Dataset) -> int:
    """The side of the images the model sees (after the engine's on-device resize)."""
    spec = RunSpec(model=case.model, dataset=case.dataset, recipe=case.recipe, image_size=case.image_size)
    train, _ = batches_for(spec, replace(dataset, train=head(dataset.train, 1), test=head(dataset.test, 1)),
                           torch.device("cpu"))
    return next(iter(train))[0].shape[-1]
