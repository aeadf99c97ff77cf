"""A user's dataset, named by import path (``package.module:function``).

The factory is called with ``data_root`` (when its signature takes it) and returns one of:

- a :class:`~harness.data.registry.Dataset`;
- a mapping with ``train`` and ``test`` pairs of (uint8 images N x C x H x W, int labels), and
  optionally ``num_classes``, ``mean``, ``std`` (per channel, in [0, 1]), ``flip`` and
  ``transform``;
- a pair of torchvision-style datasets (``train``, ``test``) holding ``.data`` (uint8 N x H x W
  x C or N x H x W) and ``.targets``.

Missing statistics are measured on the training split; the class count is the largest label
plus one unless given. The harness trains on ``(x / 255 - mean) / std``. Given ``mean`` and
``std``, or a ``transform`` (a callable from float batches in [0, 1] to the model's input), are
also the declared preprocessing of the lab's own pipeline, with which the harness evaluates the
lab's files (:mod:`harness.data.preprocess`); without either, those are evaluated on [0, 1].
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
import torch

from harness.data.preprocess import Preprocess
from harness.data.registry import DataError, Dataset, Split
from harness.imports import ImportPathError, call_factory, load_callable


def load_factory(path: str, data_root: Optional[Path]) -> Dataset:
    try:
        produced = call_factory(load_callable(path, "dataset"), path, "dataset", data_root=data_root)
    except ImportPathError as exc:
        raise DataError(str(exc)) from None
    if isinstance(produced, Dataset):
        return produced
    if isinstance(produced, Mapping):
        return _from_mapping(path, produced)
    if isinstance(produced, (tuple, list)) and len(produced) == 2:
        train, test = (_torchvision_split(path, d) for d in produced)
        return _dataset(path, train, test, {})
    raise DataError(f"dataset {path!r} returned a {type(produced).__name__}; return a harness "
                    f"Dataset, a mapping with 'train' and 'test' (images, labels) pairs, or a "
                    f"(train, test) pair of torchvision datasets")


def _from_mapping(path: str, data: Mapping) -> Dataset:
    missing = [k for k in ("train", "test") if k not in data]
    if missing:
        raise DataError(f"dataset {path!r}: the mapping lacks {', '.join(missing)}; give "
                        f"'train' and 'test' as (images uint8 N x C x H x W, labels) pairs")
    splits = [Split(_images(path, name, data[name][0]), _labels(path, name, data[name][1]))
              for name in ("train", "test")]
    return _dataset(path, splits[0], splits[1], data)


def _images(path: str, split: str, images: Any) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(images))
    if tensor.dtype != torch.uint8 or tensor.ndim != 4:
        raise DataError(f"dataset {path!r}: {split} images must be uint8 N x C x H x W, got "
                        f"{tensor.dtype} {tuple(tensor.shape)}")
    return tensor.contiguous()


def _labels(path: str, split: str, labels: Any) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(labels)).to(torch.int64)
    if tensor.ndim != 1 or (tensor.numel() and int(tensor.min()) < 0):
        raise DataError(f"dataset {path!r}: {split} labels must be non-negative integers, one "
                        f"per image")
    return tensor


def _torchvision_split(path: str, ds: Any) -> Split:
    if not hasattr(ds, "data") or not hasattr(ds, "targets"):
        raise DataError(f"dataset {path!r}: a {type(ds).__name__} has no .data and .targets; "
                        f"return (images, labels) pairs instead")
    data = np.asarray(ds.data)
    images = data[:, None] if data.ndim == 3 else data.transpose(0, 3, 1, 2)
    return Split(_images(path, "torchvision", np.ascontiguousarray(images)),
                 _labels(path, "torchvision", ds.targets))


def _dataset(path: str, train: Split, test: Split, extra: Mapping) -> Dataset:
    channels = train.images.shape[1]
    pixels = train.images.float().div(255).transpose(0, 1).reshape(channels, -1)
    declared = _statistics(path, extra, channels)
    mean = declared[0] if declared else tuple(pixels.mean(1).tolist())
    std = declared[1] if declared else tuple(pixels.std(1).tolist())
    classes = int(extra.get("num_classes") or int(max(train.labels.max(), test.labels.max())) + 1)
    return Dataset(name=path, num_classes=classes, train=train, test=test, mean=mean, std=std,
                   flip=bool(extra.get("flip", False)),
                   source=f"{path} ({len(train)} train / {len(test)} test images)",
                   preprocess=_preprocess(path, extra, declared))


def _statistics(path: str, extra: Mapping, channels: int) -> Optional[tuple]:
    """The (mean, std) the factory gives, checked; None when it gives neither."""
    given = [k for k in ("mean", "std") if extra.get(k) is not None]
    if not given:
        return None
    if len(given) == 1:
        raise DataError(f"dataset {path!r}: gives {given[0]} without "
                        f"{'std' if given[0] == 'mean' else 'mean'}; give both (per channel, "
                        f"in [0, 1]) or neither")
    values = []
    for key in ("mean", "std"):
        raw = extra[key]
        items = tuple(raw) if isinstance(raw, (list, tuple)) else (raw,)
        ok = len(items) == channels and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                            for v in items)
        if not ok or (key == "std" and not all(v > 0 for v in items)):
            raise DataError(f"dataset {path!r}: {key} must be {channels} number(s), one per "
                            f"channel{' and > 0' if key == 'std' else ''} (in [0, 1]), got {raw!r}")
        values.append(tuple(float(v) for v in items))
    return tuple(values)


def _preprocess(path: str, extra: Mapping, declared: Optional[tuple]) -> Optional[Preprocess]:
    """How the lab fed its model, as the factory declares it (None: not declared)."""
    transform = extra.get("transform")
    if transform is not None:
        if not callable(transform):
            raise DataError(f"dataset {path!r}: transform must be a callable (float batches in "
                            f"[0, 1] to the model's input), got a {type(transform).__name__}")
        name = getattr(transform, "__qualname__", type(transform).__name__)
        return Preprocess("transform", f"declared by dataset {path!r}", transform=transform,
                          name=f"{getattr(transform, '__module__', '?')}.{name}")
    if declared is None:
        return None
    return Preprocess("normalize", f"declared by dataset {path!r}", declared[0], declared[1])
