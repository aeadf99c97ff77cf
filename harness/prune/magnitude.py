"""Unstructured magnitude pruning (the IMP step): global or layer-wise, to an exact count.

Already pruned weights rank below every surviving one, so a new mask always contains the old
one's zeros (masks nest from state to state) as long as the target does not shrink.
"""
from __future__ import annotations

from typing import Callable

import torch

from harness.prune.masks import MaskSet


def _scores(masks: MaskSet) -> list[torch.Tensor]:
    return [torch.where(m != 0, p.detach().abs().float(), torch.full_like(p, -1.0, dtype=torch.float32))
            for p, m in zip(masks.params, masks.masks)]


def _lowest(scores: torch.Tensor, count: int) -> torch.Tensor:
    """A flat 0/1 keep-mask with the ``count`` lowest scores set to 0."""
    keep = torch.ones_like(scores)
    if count > 0:
        keep[torch.topk(scores, count, largest=False, sorted=False).indices] = 0
    return keep


def prune_global(masks: MaskSet, fraction: float) -> list[torch.Tensor]:
    """Prune the smallest-magnitude weights over all layers so ``fraction`` of them are zero."""
    scores = _scores(masks)
    flat = torch.cat([s.flatten() for s in scores])
    already = sum(masks.pruned_counts())
    keep = _lowest(flat, max(already, round(fraction * flat.numel())))
    return [k.view_as(s) for k, s in zip(torch.split(keep, [s.numel() for s in scores]), scores)]


def prune_layerwise(masks: MaskSet, fraction: float) -> list[torch.Tensor]:
    """Prune ``fraction`` of every layer by its own magnitudes."""
    out = []
    for s, already in zip(_scores(masks), masks.pruned_counts()):
        out.append(_lowest(s.flatten(), max(already, round(fraction * s.numel()))).view_as(s))
    return out


SCOPES: dict[str, Callable[[MaskSet, float], list]] = {"global": prune_global, "layer": prune_layerwise}


def magnitude_masks(masks: MaskSet, fraction: float, scope: str) -> MaskSet:
    return masks.with_masks(SCOPES[scope](masks, fraction))
