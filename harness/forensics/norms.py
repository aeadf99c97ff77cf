"""BatchNorm layers as evidence, read from their running statistics and affine parameters.

A BatchNorm layer (a key prefix holding ``running_mean`` and ``running_var`` vectors of at least
two channels) starts with running mean 0, running variance 1, ``num_batches_tracked`` 0, bias 0
and weight 1 (0 in the last layer of a residual branch, timm's ``zero_init_last`` and
torchvision's ``zero_init_residual``), exactly. Forward passes in train mode move the
statistics; only optimizer steps move the weight and bias. So, per layer:

* trained: its statistics moved and its weight or bias moved from its init by more than
  :data:`CONSTANT_TOLERANCE` (rms): it saw data and optimizer steps reached it;
* at init: its statistics hold exactly their init values and its weight and bias moved no more
  than that: it never saw a batch in train mode and was never stepped;
* no vote otherwise. Statistics moved, weight and bias did not: a random init run once in train
  mode (a shape check before saving) looks like that. Weight or bias moved, statistics did not:
  an init that draws the weight at random (torch before 0.4: uniform in [0, 1]) looks like that.
  The group's weight matrices decide.

This does not depend on how the convolutions were initialised, and it holds where a short
training leaves them looking random (a CIFAR ResNet after two epochs). Each tensor of a layer
carries the layer (:class:`NormLayer`); a group counts layers, not tensors
(:mod:`harness.forensics.judgement`).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional

import torch

from harness.checkpoint.tensors import JUDGED_DTYPES, storage_elements
from harness.forensics.evidence import CONSTANT_TOLERANCE

PARTS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
MAX_CHANNELS = 1 << 16        # BatchNorm layers have thousands of channels at most


@dataclass(frozen=True)
class NormLayer:
    layer: str
    trained: Optional[bool]                 # None: no vote (only one of the two moved)
    stats_moved: bool
    affine_change: Optional[float]          # rms change of weight from 1 (or 0), bias from 0
    batches: Optional[int]                  # num_batches_tracked, where the file holds it

    def words(self) -> str:
        batches = f", {self.batches} batches tracked" if self.batches is not None else ""
        affine = ("no weight or bias" if self.affine_change is None
                  else f"weight/bias {self.affine_change:.3g} rms from their init")
        stats = "statistics moved" if self.stats_moved else "statistics at 0/1"
        return f"{stats}, {affine}{batches}"

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        if self.affine_change is not None:
            data["affine_change"] = round(self.affine_change, 6)
        return data


def with_norm_layers(evidence: list, tensors: dict) -> list:
    """The evidence with each BatchNorm layer's tensors marked with the layer's verdict."""
    layers = norm_layers(tensors)
    if not layers:
        return evidence
    marked = []
    for item in evidence:
        prefix, _, part = item.name.rpartition(".")
        layer = layers.get(prefix) if part in PARTS else None
        marked.append(item if layer is None else dataclasses.replace(item, norm=layer))
    return marked


def norm_layers(tensors: dict) -> dict:
    """Layer prefix -> :class:`NormLayer` for every BatchNorm layer of the state dict."""
    layers = {}
    for key in tensors:
        if isinstance(key, str) and key.endswith(".running_mean"):
            prefix = key[: -len(".running_mean")]
            layer = _layer(prefix, tensors)
            if layer is not None:
                layers[prefix] = layer
    return layers


def _channels(tensor, size: Optional[int] = None) -> bool:
    """A dense float vector of 2..MAX_CHANNELS values (``size`` of them, when given)."""
    return (isinstance(tensor, torch.Tensor) and tensor.ndim == 1
            and tensor.layout == torch.strided and not tensor.is_meta
            and tensor.dtype in JUDGED_DTYPES and 2 <= tensor.numel() <= MAX_CHANNELS
            and tensor.numel() <= storage_elements(tensor)
            and (size is None or tensor.numel() == size))


def _layer(prefix: str, tensors: dict) -> Optional[NormLayer]:
    mean, var = tensors.get(f"{prefix}.running_mean"), tensors.get(f"{prefix}.running_var")
    if not _channels(mean) or not _channels(var, mean.numel()):
        return None
    weight, bias = tensors.get(f"{prefix}.weight"), tensors.get(f"{prefix}.bias")
    weight = weight if _channels(weight, mean.numel()) else None
    bias = bias if _channels(bias, mean.numel()) else None
    if not all(bool(t.isfinite().all()) for t in (mean, var, weight, bias) if t is not None):
        return None                 # the evidence names its non-finite values
    batches = _count(tensors.get(f"{prefix}.num_batches_tracked"))
    stats_moved = bool(mean.ne(0).any()) or bool(var.ne(1).any()) or bool(batches)
    changes = ([min(_rms(weight, 1.0), _rms(weight, 0.0))] if weight is not None else []) \
        + ([_rms(bias, 0.0)] if bias is not None else [])
    affine = max(changes) if changes else None
    affine_moved = affine is not None and affine > CONSTANT_TOLERANCE
    trained = None if stats_moved != affine_moved else stats_moved
    if affine is None:
        trained = None if stats_moved else False
    return NormLayer(prefix, trained, stats_moved, affine, batches)


def _rms(tensor: torch.Tensor, init: float) -> float:
    """Root mean square of ``tensor - init``, scaled by its peak so that no square overflows."""
    change = tensor.double() - init
    peak = float(change.abs().max())
    return 0.0 if peak == 0 else peak * float((change / peak).pow(2).mean().sqrt())


def _count(tensor) -> Optional[int]:
    if not isinstance(tensor, torch.Tensor) or tensor.numel() != 1 or tensor.is_meta \
            or tensor.layout != torch.strided or tensor.is_complex() or tensor.is_quantized:
        return None
    value = float(tensor.reshape(()).double())
    return int(value) if math.isfinite(value) else None

