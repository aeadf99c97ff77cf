"""RSST's penalty: an L2 term on the structures chosen for removal, growing over the state.

At training progress ``p`` in [0, 1) the coefficient is ``limit * curve(p)`` rounded down to a
multiple of ``granularity`` (so it rises in steps) and capped at ``limit``. Curves
(:data:`CURVES`): ``x``, ``x^2``, ``x^3``, ``exp`` ((e^p - 1) / (e - 1)) and
``exp_custom_exponents`` ((e^(a p) - 1) / (e^a - 1), ``a`` = ``reg_exponents``, steeper late for
larger a). The term itself, ``coefficient * sum of squares of the selected weights``, stays a
device tensor: no host synchronisation inside the training step.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

CURVES: dict[str, Callable[[float, float], float]] = {
    "x": lambda p, a: p,
    "x^2": lambda p, a: p ** 2,
    "x^3": lambda p, a: p ** 3,
    "exp": lambda p, a: (math.exp(p) - 1) / (math.e - 1),
    "exp_custom_exponents": lambda p, a: (math.exp(a * p) - 1) / (math.exp(a) - 1),
}


def coefficient(schedule: str, progress: float, *, limit: float, granularity: float,
                exponents: float = 4.0) -> float:
    """The penalty coefficient at ``progress`` (see the module doc)."""
    raw = limit * CURVES[schedule](min(max(progress, 0.0), 1.0), exponents)
    steps = math.floor(raw / granularity + 1e-9)
    return min(limit, steps * granularity)


class StructurePenalty:
    """``coefficient(progress) * sum((w * selection)^2)`` over the weights chosen for removal."""

    def __init__(self, params: list, selections: list, spec) -> None:
        pairs = [(p, s) for p, s in zip(params, selections) if bool(s.any())]
        self.device = params[0].device if params else torch.device("cpu")
        self.params = [p for p, _ in pairs]
        self.selections = [s for _, s in pairs]
        self.spec = spec
        self.used: list[float] = []     # the coefficient of every call, in order (host floats)

    def coefficient(self, progress: float) -> float:
        s = self.spec
        return coefficient(s.reg_schedule, progress, limit=s.reg_limit,
                           granularity=s.reg_granularity, exponents=s.reg_exponents)

    def squared_norm(self) -> torch.Tensor:
        if not self.params:      # nothing to cut (e.g. a per-state rate that re-selects the same)
            return torch.zeros((), device=self.device)
        return torch.stack([(p * s).float().square().sum() for p, s in zip(self.params, self.selections)]).sum()

    def __call__(self, progress: float) -> torch.Tensor:
        lam = self.coefficient(progress)
        self.used.append(lam)
        return self.squared_norm() * lam

    def per_epoch(self, epochs: list) -> list[dict]:
        """The record's view: per epoch, the coefficient at its first and last step and the mean
        penalty added to the loss (from the phase's EpochRecords)."""
        steps = len(self.used) // max(1, len(epochs))
        out = []
        for e, record in enumerate(epochs):
            chunk = self.used[e * steps:(e + 1) * steps]
            out.append({"epoch": e, "coefficient_start": chunk[0] if chunk else None,
                        "coefficient_end": chunk[-1] if chunk else None, "mean_penalty": record.penalty})
        return out
