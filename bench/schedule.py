"""The research group's budget, 16 states x 60 epochs per method, estimated from a measured
epoch. Its size is the full profile's pruning cases (suites/profiles.py), not a copy of it."""
from __future__ import annotations

from suites.profiles import FULL, PRUNING_CASES

_FULL = [c.spec for c in PRUNING_CASES if c.profiles == FULL]
STATES = 1 + max(spec.prune.states for spec in _FULL)          # State 0 and the pruned states
EPOCHS = max((spec.prune.state_recipe or spec.recipe).epochs for spec in _FULL)


def schedule_minutes(epoch_s: float, warmup_s: float, warmups: int = 1) -> float:
    """:data:`STATES` x :data:`EPOCHS` epochs of ``epoch_s`` (train + eval), plus ``warmups``
    warm-ups: one per run by default (the engine compiles its forward once per run and reuses it
    for every state)."""
    return (STATES * EPOCHS * epoch_s + warmups * max(warmup_s, 0.0)) / 60
