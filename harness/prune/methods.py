"""The pruning methods, by name: what one state does to the masks.

A method turns the current masks and the trained weights into a :class:`StatePlan`: the masks
to train the state under, the masks it ends with, and an optional penalty added to the loss.

- ``imp``: unstructured magnitude pruning (global or layer-wise), trained under the new mask.
- ``refill``: IMP's magnitude step, then whole channels (heads, neurons) kept or removed
  (:mod:`harness.prune.refill`), trained under the structured mask.
- ``rsst``: the same channels chosen, but trained unpruned under an L2 penalty on them that grows
  on a schedule (:mod:`harness.prune.penalty`); they are cut at the end of the state.

How Refill and RSST choose channels is the spec's ``schedule`` (:data:`CHANNEL_SCHEDULES`):
``geometric`` ranks one joint pool against the state's weight budget and keeps earlier removals
(:mod:`harness.prune.refill`); ``per_state_rate`` keeps a share of each pool, re-selected every
state (:mod:`harness.prune.pools`). A channel re-selected after a removal trains again: RSST
trains under the union of the current and the final masks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

from harness.prune import pools
from harness.prune.magnitude import magnitude_masks
from harness.prune.masks import MaskSet
from harness.prune.penalty import StructurePenalty
from harness.prune.refill import refill


@dataclass
class StatePlan:
    train: MaskSet
    final: MaskSet
    penalty: Optional[StructurePenalty] = None


Planner = Callable[..., StatePlan]   # (masks, families, fraction, prune spec) -> StatePlan


@dataclass(frozen=True)
class Method:
    name: str
    structured: bool          # removes whole channels (judged by the structure verdict)
    plan: Planner


def _imp(masks: MaskSet, fams: list, fraction: float, spec) -> StatePlan:
    pruned = magnitude_masks(masks, fraction, spec.scope)
    return StatePlan(pruned, pruned)


def _geometric(masks: MaskSet, fams: list, fraction: float, spec) -> MaskSet:
    kept = magnitude_masks(masks, fraction, spec.scope)
    return refill(fams, masks, kept, fraction, spec.channel_criterion)


def _per_state_rate(masks: MaskSet, fams: list, fraction: float, spec) -> MaskSet:
    return pools.select(fams, masks, spec)


CHANNEL_SCHEDULES: dict[str, Callable[..., MaskSet]] = {
    "geometric": _geometric, "per_state_rate": _per_state_rate}


def _refill(masks: MaskSet, fams: list, fraction: float, spec) -> StatePlan:
    structured = CHANNEL_SCHEDULES[spec.schedule](masks, fams, fraction, spec)
    return StatePlan(structured, structured)


def _rsst(masks: MaskSet, fams: list, fraction: float, spec) -> StatePlan:
    final = _refill(masks, fams, fraction, spec).final
    selections = [before * (1 - after) for before, after in zip(masks.masks, final.masks)]
    revived = any(bool((after > before).any()) for before, after in zip(masks.masks, final.masks))
    train = masks.with_masks(map(torch.maximum, masks.masks, final.masks)) if revived else masks
    return StatePlan(train, final, StructurePenalty(masks.params, selections, spec))


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("imp", False, _imp),
    Method("refill", True, _refill),
    Method("rsst", True, _rsst),
)}
