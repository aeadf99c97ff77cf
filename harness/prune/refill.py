"""Refill (IMP-Refill, Chen et al., ICML 2022, "Coarsening the Granularity"): turn an unstructured
magnitude mask into whole channels.

Each live channel (head, MLP neuron, output channel) is scored by a criterion over the weights
the unstructured step kept in it, per weight of the channel so heads and neurons compare:
``count`` (fraction kept), ``l1`` (mean |w| kept), ``l2`` (root mean square of w kept). Channels
are removed from the least important up while the removed weights fit the state's target count;
the others are refilled (kept dense). Channels removed by an earlier state stay removed, so the
result is whole channels only, nested in the previous mask, and within one channel's size of the
target (an MLP neuron of the digits ViT is 0.07% of its prunable weights).
"""
from __future__ import annotations

from typing import Callable

import torch

from harness.prune.masks import MaskSet
from harness.prune.structure import Family

CRITERIA: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "count": lambda w, kept: kept.float(),
    "l1": lambda w, kept: w.detach().abs().float() * kept,
    "l2": lambda w, kept: w.detach().float().square() * kept,
}


def channel_scores(fams: list[Family], masks: MaskSet, kept: MaskSet, criterion: str) -> torch.Tensor:
    """Importance of every channel of every family, concatenated in family order."""
    fn = CRITERIA[criterion]
    elementwise = [fn(p, k) for p, k in zip(masks.params, kept.masks)]
    scores = []
    for f in fams:
        s = f.reduce(elementwise, lambda v: v) / f.channel_size
        scores.append(s.sqrt() if criterion == "l2" else s)
    return torch.cat(scores)


def refill(fams: list[Family], masks: MaskSet, kept: MaskSet, fraction: float, criterion: str) -> MaskSet:
    """Whole-channel masks with ``fraction`` of the prunable weights removed (at most, by less than
    one channel), ranking the live channels of ``masks`` by ``criterion`` over ``kept``."""
    scores = channel_scores(fams, masks, kept, criterion)
    alive = torch.cat([~f.channel_state(masks.masks)[1] for f in fams])
    sizes = [f.channel_size for f in fams for _ in range(f.n)]
    scores = torch.where(alive, scores, torch.full_like(scores, -float("inf")))
    order = torch.argsort(scores, stable=True).tolist()
    alive_host = alive.tolist()
    budget = round(fraction * masks.total)
    removed, remove = 0, [False] * len(sizes)
    for c in order:
        if not alive_host[c] or removed + sizes[c] <= budget:
            remove[c] = True
            removed += sizes[c]
    return masks.with_masks(expand_channels(fams, masks, torch.tensor(remove, device=scores.device)))


def expand_channels(fams: list[Family], masks: MaskSet, remove: torch.Tensor) -> list[torch.Tensor]:
    """Per-weight masks from one flag per channel (family order): True = remove the channel."""
    out: list = [None] * len(masks.names)
    start = 0
    for f in fams:
        keep = (~remove[start:start + f.n]).to(masks.masks[0].dtype)
        start += f.n
        for m in f.members:
            out[m.index] = f.expand(keep, m.index, masks.params[m.index].shape)
    return out
