"""Evidence of a pretrained start (DESIGN.md): the first epoch decides, the first batch informs.

A first-batch loss near ln(C) happens with a random backbone and with a trained backbone under a
fresh head alike, so it is quoted, never judged; what separates the two is the test accuracy after
epoch 0 and the running accuracy inside it.
"""
from __future__ import annotations

import math
from typing import Optional

from harness.expect import Expectation
from harness.record import EpochRecord, RunRecord, StateRecord


def epoch_zero(state: StateRecord) -> Optional[EpochRecord]:
    """The state's epoch 0 with a test accuracy, or None (a resumed log may start later)."""
    first = state.epochs[0] if state.epochs else None
    if first is None or first.epoch != 0 or first.test_accuracy is None:
        return None
    return first


def loss_vs_ln(loss: Optional[float], num_classes: int) -> str:
    """'2.3346 = ln 10 + 1%' (how far the first-batch loss sits from chance, ln C)."""
    if loss is None or num_classes < 2 or not math.isfinite(loss):
        return "first-batch loss not in the log" if loss is None else f"first-batch loss {loss}"
    off = 100.0 * (loss / math.log(num_classes) - 1.0)
    return f"first-batch loss {loss:.5g} = ln {num_classes} {'+' if off >= 0 else '-'} {abs(off):.0f}%"


def curve_text(intra: list) -> str:
    """The running accuracy inside epoch 0, or the running loss where no accuracy was logged."""
    points = [f"{acc:.2f}% at step {step}/{steps}" for step, steps, _, acc in intra if acc is not None]
    if points:
        return "running accuracy in epoch 0: " + " -> ".join(points)
    losses = [f"{loss:.4g} at step {step}/{steps}" for step, steps, loss, _ in intra if loss is not None]
    if losses:
        return "running loss in epoch 0: " + " -> ".join(losses)
    return "no learning curve inside epoch 0 in the record"


def start_evidence(record: RunRecord, state: StateRecord, first: EpochRecord,
                   bar: Expectation) -> dict:
    """The pretrained-start verdict's evidence, with a one-line ``note`` for its message."""
    passed = bar.evaluate(first.test_accuracy).passed
    verdict = ("learns like a pretrained start" if passed
               else "claims a pretrained init but learns like a random one")
    fresh_head = " (a fresh head on a trained backbone starts there too)" if passed else ""
    note = (f"{verdict}: {first.test_accuracy:.2f}% after epoch 0 (floor {bar.threshold:g}%); "
            f"{loss_vs_ln(state.first_batch_loss, record.num_classes)}{fresh_head}; "
            f"{curve_text(state.intra_epoch)}")
    ln_c = math.log(record.num_classes) if record.num_classes > 1 else None
    loss = state.first_batch_loss
    return {"note": note, "metric": "test accuracy after epoch 0",
            "first_batch_loss": _round(loss, 4), "first_batch_accuracy": _round(state.first_batch_accuracy, 3),
            "ln_num_classes": _round(ln_c, 4),
            "first_batch_loss_over_ln_c": _round(loss / ln_c if loss is not None and ln_c else None, 4),
            "intra_epoch_curve": [[s, n, _round(l, 4), _round(a, 2)] for s, n, l, a in state.intra_epoch],
            "init": record.init, "init_audit": record.init_audit, "run_id": record.run_id,
            "source": record.source}


def _round(value: Optional[float], digits: int) -> Optional[float]:
    return None if value is None else round(value, digits)
