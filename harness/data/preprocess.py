"""How a lab's model received its images: the preprocessing a dataset declares.

The harness trains its own runs on ``(x / 255 - mean) / std`` with the dataset's statistics
(:class:`harness.data.batches.Batches`). A lab's own files were trained by the lab's pipeline;
when the harness evaluates them (``reported_accuracy``) it feeds the images as the dataset
declares the lab fed them:

- ``normalize``: ``(x / 255 - mean) / std`` with the ``mean`` and ``std`` a dataset factory gives;
- ``transform``: a callable the factory gives (``transform``), applied to float batches in [0, 1]
  (N x C x H x W, on the evaluation device), returning the model's input batch;
- ``unit``: nothing declared, images in [0, 1] as torchvision's ``ToTensor`` gives them (the
  research group's pipeline: their models normalise themselves, or not at all).

Each says what it is in one line (:meth:`Preprocess.describe`), which the verdict's evidence
carries.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import torch


class PreprocessError(ValueError):
    """A declared transform did not give a model input batch."""


@dataclass(frozen=True)
class Preprocess:
    kind: str                       # a key of KINDS
    declared_by: str                # who declared it, for the evidence line
    mean: tuple = ()
    std: tuple = ()
    transform: Optional[Callable] = field(default=None, compare=False)
    name: str = ""                  # the transform's name

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Model inputs from a uint8 batch (N x C x H x W)."""
        return KINDS[self.kind](self, images.float().div(255))

    def describe(self) -> str:
        if self.kind == "normalize":
            return (f"x / 255 normalised by mean {_numbers(self.mean)} std {_numbers(self.std)} "
                    f"({self.declared_by})")
        if self.kind == "transform":
            return f"x / 255 then transform {self.name} ({self.declared_by})"
        return f"images in [0, 1], x / 255 as ToTensor gives them ({self.declared_by})"


def _unit(prep: Preprocess, x: torch.Tensor) -> torch.Tensor:
    return x


def _normalize(prep: Preprocess, x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(prep.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(prep.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - mean) / std


def _transform(prep: Preprocess, x: torch.Tensor) -> torch.Tensor:
    out = prep.transform(x)
    if not isinstance(out, torch.Tensor):
        raise PreprocessError(f"the transform {prep.name} ({prep.declared_by}) returned a "
                        f"{type(out).__name__}, not a tensor batch")
    return out


KINDS: dict[str, Callable[[Preprocess, torch.Tensor], torch.Tensor]] = {
    "unit": _unit, "normalize": _normalize, "transform": _transform}


def undeclared(dataset_name: str) -> Preprocess:
    """The preprocessing of a dataset that declares none: images in [0, 1]."""
    from harness.imports import is_import_path

    fix = ("declare them in its factory" if is_import_path(dataset_name) else
           "name a factory of it that declares them")
    return Preprocess("unit", f"dataset {dataset_name!r} declares no mean/std or transform; "
                              f"{fix} if the run normalised its inputs")


def training_path(dataset) -> Preprocess:
    """The harness's own: what its engine trained and evaluated on."""
    return Preprocess("normalize", f"the harness's training path for dataset {dataset.name!r}",
                      tuple(dataset.mean), tuple(dataset.std))


def _numbers(values: tuple) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"
