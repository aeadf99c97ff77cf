"""CIFAR-10/100 through torchvision, from a local data root (downloaded only on request)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from harness.data.registry import DataError, Dataset, Split, register_dataset

_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}


def _load(name: str, data_root: Optional[Path], download: bool) -> Dataset:
    import torchvision

    if data_root is None:
        raise DataError(f"dataset {name!r} needs --data-root DIR (the folder holding "
                        f"{_FOLDERS[name]}/); add --download to fetch it there")
    if not data_root.is_dir() and not download:
        raise DataError(f"--data-root {str(data_root)!r} is not a directory; pass the folder "
                        f"holding {_FOLDERS[name]}/, or add --download")
    cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
    splits = {}
    for train in (True, False):
        try:
            ds = cls(root=str(data_root), train=train, download=download)
        except RuntimeError as exc:
            raise DataError(f"{name} not found or corrupted under --data-root {str(data_root)!r} "
                            f"(torchvision: {exc}); expected {_FOLDERS[name]}/ there, "
                            f"or add --download") from None
        images = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))
        splits[train] = Split(images, torch.as_tensor(ds.targets, dtype=torch.int64))
    mean, std = _STATS[name]
    return Dataset(name=name, num_classes=10 if name == "cifar10" else 100, train=splits[True],
                   test=splits[False], mean=mean, std=std, flip=True,
                   source=f"torchvision.datasets.{cls.__name__} at {data_root}")


@register_dataset("cifar10")
def load_cifar10(data_root: Optional[Path] = None, download: bool = False) -> Dataset:
    return _load("cifar10", data_root, download)


@register_dataset("cifar100")
def load_cifar100(data_root: Optional[Path] = None, download: bool = False) -> Dataset:
    return _load("cifar100", data_root, download)


def check_root(name: str, data_root: Path) -> Optional[str]:
    """A one-line problem when ``data_root`` cannot hold ``name`` (no loading), else None."""
    if name not in _FOLDERS:
        return None
    root = Path(data_root)
    if not root.is_dir():
        return f"--data-root {str(root)!r} is not a directory; pass the folder holding {_FOLDERS[name]}/"
    if not (root / _FOLDERS[name]).is_dir():
        return (f"--data-root {str(root)!r} has no {_FOLDERS[name]}/ for {name}; point it at the "
                f"folder holding it, or add --download to fetch it there")
    return None
