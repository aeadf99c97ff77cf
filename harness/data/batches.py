"""Device-resident batching: the uint8 split lives on the training device; shuffling, random
crop with padding, horizontal flip, resize and normalisation are applied batch-wise there.

The same code runs on CPU and CUDA, so both paths have identical semantics: there is no
DataLoader, no worker process and no per-image Python.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import torch
import torch.nn.functional as F

from harness.data.registry import Dataset, Split


@dataclass(frozen=True)
class Augment:
    crop_padding: int = 0      # random crop of the original size from the zero-padded image
    flip: bool = False         # horizontal flip with probability 1/2

    @property
    def active(self) -> bool:
        return self.crop_padding > 0 or self.flip


# A Recipe's ``augment`` name -> the augmentation on a dataset (flips only where labels allow).
AUGMENTS: dict[str, Callable[[int, Dataset], Augment]] = {
    "none": lambda padding, dataset: Augment(),
    "crop": lambda padding, dataset: Augment(crop_padding=padding),
    "crop_flip": lambda padding, dataset: Augment(crop_padding=padding, flip=dataset.flip),
}


def augment_for(kind: str, padding: int, dataset: Dataset) -> Augment:
    return AUGMENTS[kind](padding, dataset)


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Per-image random crop of size (H, W) from ``x`` zero-padded by ``padding`` on each side."""
    b, _, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (b,), device=x.device, generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (b,), device=x.device, generator=generator)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]   # (B, 1, H, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]   # (B, 1, 1, W)
    bidx = torch.arange(b, device=x.device)[:, None, None, None]
    cidx = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[bidx, cidx, rows, cols]


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flip = torch.rand(x.shape[0], device=x.device, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


class Batches:
    """Batches of one split on one device.

    ``train=True``: reshuffled every epoch with ``torch.randperm`` on the device, augmented, and
    the last incomplete batch dropped. ``train=False``: in order, every sample, no augmentation.
    """

    def __init__(self, split: Split, dataset: Dataset, *, batch_size: int, device: torch.device,
                 train: bool, augment: Augment = Augment(), image_size: Optional[int] = None,
                 seed: int = 0) -> None:
        self.images = split.images.to(device, non_blocking=True)
        self.labels = split.labels.to(device, non_blocking=True)
        self.batch_size = min(batch_size, len(split)) if train else batch_size
        self.train = train
        self.augment = augment
        self.device = device
        self.image_size = image_size
        self.mean = torch.tensor(dataset.mean, device=device).view(1, -1, 1, 1) * 255
        self.inv_std = 1 / (torch.tensor(dataset.std, device=device).view(1, -1, 1, 1) * 255)
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.train else -(-n // self.batch_size)

    @property
    def samples_per_epoch(self) -> int:
        return len(self) * self.batch_size if self.train else len(self.labels)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 batch -> augmented, resized, normalised float batch."""
        if self.train and self.augment.crop_padding:
            x = random_crop(x, self.augment.crop_padding, self.generator)
        if self.train and self.augment.flip:
            x = random_flip(x, self.generator)
        x = (x.float() - self.mean) * self.inv_std
        if self.image_size is not None and self.image_size != x.shape[-1]:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear",
                              align_corners=False, antialias=False)
        return x

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        order = (torch.randperm(n, device=self.device, generator=self.generator) if self.train
                 else torch.arange(n, device=self.device))
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield self.transform(self.images[idx]), self.labels[idx]
