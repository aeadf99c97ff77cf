"""Channel pools of the per-state-rate schedule (the research group's Refill/RSST selection).

Each kind of channel is a pool of its own: attention heads, MLP neurons, and any other channel
(a CNN's output channels). Every state keeps the ``floor(n * (1 - rate))`` best channels of each
pool (at least one), ``n`` being the pool's channels alive before the state (``rate_of=
"remaining"``) or all of them (``"all"``). The ranking covers every channel of the pool, earlier
removals included: nothing forces a removed channel to stay removed (in the harness a removed
channel's weights are zero, so it scores zero and returns only where a live channel scores no
higher).

Scores are the Refill criterion (:func:`harness.prune.refill.channel_scores`) over the weights
that survive IMP's unstructured step at this state's rate: ``rate`` of the weights still
unpruned, globally by magnitude, as main_imp_fillback.py prunes before it picks heads.
"""
from __future__ import annotations

import math

import torch

from harness.prune.magnitude import magnitude_masks
from harness.prune.masks import MaskSet
from harness.prune.refill import channel_scores, expand_channels
from harness.prune.structure import Family


def keep_count(alive: int, total: int, rate: float, rate_of: str) -> int:
    """Channels a pool keeps: ``floor(base * (1 - rate))``, at least 1 (``base``: alive or total);
    the epsilon keeps e.g. 10 * (1 - 0.8) at 2, not 1.9999999999999996 -> 1."""
    base = alive if rate_of == "remaining" else total
    return max(1, math.floor(base * (1.0 - rate) + 1e-9))


def unstructured_fraction(masks: MaskSet, rate: float) -> float:
    """The sparsity after pruning ``rate`` of the weights ``masks`` still keeps."""
    alive = 1.0 - sum(masks.pruned_counts()) / masks.total
    return 1.0 - alive * (1.0 - rate)


def select(fams: list[Family], masks: MaskSet, spec) -> MaskSet:
    """Whole-channel masks keeping each pool's share of its best channels (see the module doc)."""
    kept = magnitude_masks(masks, unstructured_fraction(masks, spec.rate), spec.scope)
    scores = channel_scores(fams, masks, kept, spec.channel_criterion)
    alive = torch.cat([~f.channel_state(masks.masks)[1] for f in fams])
    units = [f.unit for f in fams for _ in range(f.n)]
    remove = torch.ones_like(alive)
    rates = spec.unit_rates
    for unit in dict.fromkeys(units):
        members = torch.tensor([i for i, u in enumerate(units) if u == unit], device=scores.device)
        keep = keep_count(int(alive[members].sum()), len(members), rates[unit], spec.rate_of)
        order = torch.argsort(scores[members], descending=True, stable=True)
        remove[members[order[:keep]]] = False
    return masks.with_masks(expand_channels(fams, masks, remove))
