"""Masks: one per prunable weight, kept on the weight's device, applied in place.

Prunable weights are those of every ``nn.Linear`` and ``nn.Conv*`` (attention qkv/proj, MLP
fc1/fc2, convolutions), never norms, biases, embeddings (``patch_embed``, or any patchifying
convolution whose stride equals its kernel) or the classifier head (:mod:`harness.heads`) unless
``include_head``. ``MaskSet.apply()`` zeroes the pruned weights with one fused multiply;
the state loop calls it after every optimiser step, so pruned weights are exactly zero whenever
the model is evaluated or saved.
"""
from __future__ import annotations

from typing import Iterable, Optional

import torch
from torch import nn

from harness.heads import classifier_modules

PRUNABLE_MODULES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
EMBEDDING_PREFIXES = ("patch_embed",)


def _is_embedding(module: nn.Module) -> bool:
    """A patchifying stem: a convolution whose stride equals its kernel (ViT patch embedding)."""
    return (isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d))
            and tuple(module.stride) == tuple(module.kernel_size) and max(module.kernel_size) > 1)


def prunable_weights(model: nn.Module, include_head: bool = False) -> list[tuple[str, nn.Parameter]]:
    """(parameter name, weight) of every prunable layer, in module order."""
    heads = set() if include_head else classifier_modules(model)
    found = []
    for name, module in model.named_modules():
        if not isinstance(module, PRUNABLE_MODULES) or name in heads:
            continue
        if _is_embedding(module) or any(name == p or name.startswith(p + ".") for p in EMBEDDING_PREFIXES):
            continue
        found.append((f"{name}.weight", module.weight))
    return found


class MaskSet:
    """Masks of a model's prunable weights (float 0/1 in the weight's dtype, on its device)."""

    def __init__(self, names: list[str], params: list[nn.Parameter], masks: list[torch.Tensor]) -> None:
        if not (len(names) == len(params) == len(masks)):
            raise ValueError(f"MaskSet: {len(names)} names, {len(params)} weights, {len(masks)} masks")
        for name, p, m in zip(names, params, masks):
            if m.shape != p.shape:
                raise ValueError(f"MaskSet: mask of {name} has shape {tuple(m.shape)}, "
                                 f"the weight {tuple(p.shape)}")
        self.names, self.params, self.masks = list(names), list(params), list(masks)

    @classmethod
    def dense(cls, model: nn.Module, include_head: bool = False) -> "MaskSet":
        pairs = prunable_weights(model, include_head)
        if not pairs:
            raise ValueError(f"{type(model).__name__} has no prunable Linear/Conv weight")
        names = [n for n, _ in pairs]
        params = [p for _, p in pairs]
        return cls(names, params, [torch.ones_like(p, memory_format=torch.contiguous_format)
                                   for p in params])

    def with_masks(self, masks: Iterable[torch.Tensor]) -> "MaskSet":
        return MaskSet(self.names, self.params, [m.to(p.dtype) for m, p in zip(masks, self.params)])

    @torch.no_grad()
    def apply(self) -> None:
        """Zero every pruned weight in place (one fused multiply; no host synchronisation)."""
        torch._foreach_mul_(self.params, self.masks)

    # --- measurement (each reads the device once) -----------------------------------------
    @property
    def total(self) -> int:
        return sum(m.numel() for m in self.masks)

    def pruned_counts(self) -> list[int]:
        counts = torch.stack([(m == 0).sum() for m in self.masks])
        return [int(c) for c in counts.tolist()]

    def sparsity(self) -> float:
        """Pruned fraction of all prunable weights, in percent."""
        return self.sparsities()[0]

    def layer_sparsity(self) -> dict:
        return self.sparsities()[1]

    def sparsities(self) -> tuple[float, dict]:
        """(overall, per weight name) pruned fractions in percent, from one read of the device."""
        counts = self.pruned_counts()
        layers = {n: 100.0 * c / m.numel() for n, c, m in zip(self.names, counts, self.masks)}
        return 100.0 * sum(counts) / self.total, layers

    # --- storage --------------------------------------------------------------------------
    def to_tensors(self) -> dict:
        """Boolean masks by weight name (True = kept), for safetensors."""
        return {n: m.bool() for n, m in zip(self.names, self.masks)}

    def load(self, tensors: dict, source: Optional[str] = None) -> "MaskSet":
        """The same weights with masks read from ``tensors``; every weight must be present."""
        missing = [n for n in self.names if n not in tensors]
        extra = [n for n in tensors if n not in self.names]
        if missing or extra:
            raise ValueError(f"masks {source or ''}: missing {missing[:4]}, unexpected {extra[:4]}")
        return self.with_masks(tensors[n].to(p.device) for n, p in zip(self.names, self.params))
