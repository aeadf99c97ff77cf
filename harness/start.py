"""Evidence of a pretrained start: the first epoch decides, the first batch informs.

A first-batch loss near ln(C) happens with a random backbone and with a trained backbone under a
fresh head alike, so it is quoted, never judged; what separates the two is the test accuracy after
epoch 0 and the running accuracy inside it.
"""
from __future__ import annotations

import math
from typing import Optional

from harness.expect import Expectation
from harness.sampling import even_sample
from harness.record import EpochRecord, RunRecord, StateRecord

NOTE_POINTS = 12        # points of the epoch-0 curve the one-line note spells out
EVIDENCE_POINTS = 100   # points of it the evidence keeps (report.json, the HTML page)
_PERCENT, _LOSS = "{:.2f}%", "{:.4g}"


def epoch_zero(state: StateRecord) -> Optional[EpochRecord]:
    """The state's epoch 0 with a test accuracy, or None: a resumed log may start later, and a
    log whose evaluations cannot be placed in epochs (``extra["epochs_unknown"]``) has none."""
    if state.extra.get("epochs_unknown"):
        return None
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
    """The running accuracy inside epoch 0, or the running loss where no accuracy was logged: at
    most NOTE_POINTS points, evenly spaced (first and last kept), and how many were left out."""
    what, points = "running accuracy", [(s, n, acc) for s, n, _, acc in intra if acc is not None]
    if not points:
        what, points = "running loss", [(s, n, loss) for s, n, loss, _ in intra if loss is not None]
    if not points:
        return "no learning curve inside epoch 0 in the record"
    shown = even_sample(points, NOTE_POINTS)
    value = _PERCENT if what == "running accuracy" else _LOSS
    text = " -> ".join(f"{value.format(v)} at step {step}/{steps}" for step, steps, v in shown)
    if len(shown) < len(points):
        what += f" ({len(shown)} of the {len(points):,} points in the record shown, evenly spaced)"
    return f"{what} in epoch 0: {text}"


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
    evidence = {"note": note, "metric": "test accuracy after epoch 0",
                "first_batch_loss": _round(loss, 4),
                "first_batch_accuracy": _round(state.first_batch_accuracy, 3),
                "ln_num_classes": _round(ln_c, 4),
                "first_batch_loss_over_ln_c": _round(loss / ln_c if loss is not None and ln_c else None, 4),
                "intra_epoch_curve": [[s, n, _round(running, 4), _round(a, 2)]
                                      for s, n, running, a in even_sample(state.intra_epoch, EVIDENCE_POINTS)],
                "intra_epoch_points": len(state.intra_epoch),
                "init": record.init, "init_audit": record.init_audit, "run_id": record.run_id,
                "source": record.source}
    if record.notes.get("intra_epoch_curve_cut"):   # the log held more points than the record
        evidence["intra_epoch_curve_cut"] = record.notes["intra_epoch_curve_cut"]
    return evidence


def _round(value: Optional[float], digits: int) -> Optional[float]:
    return None if value is None else round(value, digits)
