"""The pruning methods, by name: what one state does to the masks.

A method turns the current masks and the trained weights into a :class:`StatePlan`: the masks
to train the state under, the masks it ends with, and an optional penalty added to the loss.

- ``imp``: unstructured magnitude pruning (global or layer-wise), trained under the new mask.
- ``refill``: IMP's magnitude step, then whole channels (heads, neurons) kept or removed
  (:mod:`harness.prune.refill`), trained under the structured mask.
- ``rsst``: the same channels chosen, but trained unpruned under an L2 penalty on them that grows
  on a schedule (:mod:`harness.prune.penalty`); they are cut at the end of the state.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

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


def _refill(masks: MaskSet, fams: list, fraction: float, spec) -> StatePlan:
    kept = magnitude_masks(masks, fraction, spec.scope)
    structured = refill(fams, masks, kept, fraction, spec.channel_criterion)
    return StatePlan(structured, structured)


def _rsst(masks: MaskSet, fams: list, fraction: float, spec) -> StatePlan:
    final = _refill(masks, fams, fraction, spec).final
    selections = [before - after for before, after in zip(masks.masks, final.masks)]
    return StatePlan(masks, final, StructurePenalty(masks.params, selections, spec))


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("imp", False, _imp),
    Method("refill", True, _refill),
    Method("rsst", True, _rsst),
)}
