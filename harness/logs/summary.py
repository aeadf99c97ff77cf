"""A parsed log in a few lines a person reads (``harness log PATH``)."""
from __future__ import annotations

from harness.record import RunRecord, StateRecord
from harness.start import epoch_zero, loss_vs_ln


# notes that list what was refused or cut, and how ``harness log`` labels them
_SET_ASIDE = (("parse_problems", "refused"), ("refused_files", "refused file"),
              ("arguments_cut", "argument cut"), ("intra_epoch_curve_cut", "curve cut"))


def _pct(value) -> str:
    return "-" if value is None else f"{value:.2f}%"


def _first(state: StateRecord) -> str:
    """The first evaluation, named by the epochs trained before it: "after epoch 0" only when it
    followed the first epoch (a resumed run or one evaluated every 4 epochs starts later)."""
    if not state.epochs:
        return "no evaluation"
    first = state.epochs[0]
    unknown = state.extra.get("epochs_unknown")
    if unknown:
        return f"first evaluation {_pct(first.test_accuracy)} (epochs not known: {unknown})"
    if epoch_zero(state) is not None:
        return f"after epoch 0 {_pct(first.test_accuracy)}"
    return (f"no evaluation after epoch 0: the first after {first.epoch + 1} epochs "
            f"{_pct(first.test_accuracy)}")


def record_lines(record: RunRecord) -> list[str]:
    notes = record.notes
    claim = f"claims a pretrained init ({record.init})" if record.claims_pretrained else "no pretrained claim"
    lines = [f"{record.source} {notes.get('log_path')}: {record.model} on {record.dataset or '?'} "
             f"({record.num_classes or '?'} classes), {claim}",
             f"recipe: {record.spec.get('recipe') or 'not in the log'}",
             f"lines: {notes.get('lines_total')} read, {notes.get('lines_not_understood')} not understood, "
             f"{notes.get('undecodable_lines')} with undecodable bytes; run complete: "
             f"{'yes' if record.complete else 'no'}"]
    if record.source == "log:declared" and notes.get("declared_in"):
        lines.append(f"format: declared in {notes['declared_in']}")
    if notes.get("accuracy_scale"):
        lines.append(f"accuracy scale: {notes['accuracy_scale']}")
    lines += [f"  {p}" for p in notes.get("phases") or []]
    if notes.get("unfinished_last_line"):
        lines.append(f"unfinished last line set aside: {notes['unfinished_last_line']!r}")
    lines += [f"  not understood: {e}" for e in notes.get("not_understood_examples", [])]
    for key, label in _SET_ASIDE:
        lines += [f"  {label}: {entry}" for entry in notes.get(key) or []]
    lines += [f"  {d}" for d in notes.get("epochs_without_test_accuracy", [])]
    lines += [f"  {n}" for n in notes.get("mlperf_notes") or []]
    for s in record.states:
        metric = f" ({s.extra['metric']})" if s.extra.get("metric") else ""
        lines.append(f"state {s.index}: {len(s.epochs)} evaluated epochs{metric}, {_first(s)}, "
                     f"best {_pct(s.best_accuracy)}, final {_pct(s.final_accuracy)}, sparsity "
                     f"{s.sparsity:.2f}%, {loss_vs_ln(s.first_batch_loss, record.num_classes)}"
                     + _best_sa(s))
    if not record.states:
        lines.append("no state in the log")
    return lines


def _best_sa(state) -> str:
    """Beside the harness's "best" (the best test accuracy): the research group's best SA (the
    test accuracy at the best-validation epoch) and the best the log printed, where there are."""
    logged = state.extra.get("best_sa_logged")
    parts = [] if state.best_sa is None else [f"best SA {_pct(state.best_sa)} at the "
                                              f"best-validation epoch"]
    if isinstance(logged, (int, float)):
        parts.append(f"the log's own best {_pct(logged)}")
    return "".join(f"; {p}" for p in parts)
