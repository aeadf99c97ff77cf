"""The checks of a stored pruning run, per state: what was measured, against what the run claims.

Each check (:data:`CHECKS`) turns one state (:class:`StateView`: the state's stored file, the
previous state's, the run's claims and log) into a :class:`Finding` (an observed value, the bar
the run's own claim sets, the evidence, and a note naming the tensors, keys or log lines that
show a failure), a :class:`NotJudged` (the reason: what is missing), or None where the check has
no meaning for the state (structure at State 0).

- ``sparsity``: exact zeros of the stored prunable weights (``weight_orig * weight_mask`` where
  reparametrised) against the claimed schedule;
- ``log_consistency``: the stored sparsity against the sparsity the log printed for the state
  (``Remaining weights: X%``; for a harness run, the sparsity its record reports);
- ``structure``: heads and MLP neurons partly pruned, or removed with a weight left (0 allowed);
- ``trained``: prunable weights still equal to the init *file* on their kept entries;
- ``rewind``: tensors contradicting the claimed start: the checkpoint's ``init_weight`` differs
  from the init file, or the pruned entries of ``weight_orig`` (which no gradient reaches) lie
  closer to the previous state's weights than to the claimed start;
- ``nesting``: weights pruned at the previous state alive again (a verdict only where the run
  claims nested masks; otherwise reported in the sparsity evidence);
- ``penalty`` (RSST): RMS of the channels a magnitude criterion would remove over that of the
  kept ones at the state's end; :data:`PENALTY_BAR` is what a penalty that acted reaches (it
  drives the penalised channels towards zero), training without one stays near 1.
- ``reported_accuracy`` (:mod:`harness.runfolder.evaluation`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Union

import torch

from harness.escape import terminal
from harness.expect import Expectation
from harness.runfolder.channels import channel_summary, removable_ratio

PENALTY_BAR = 0.5          # removable-channel RMS over kept-channel RMS an acting penalty reaches
LOG_TOLERANCE = 0.1        # pp: the log prints two decimals
MOVED = 1e-6               # relative change of a tensor's kept entries that counts as trained
SHOWN = 3                  # tensors or lines named in a note


@dataclass(frozen=True)
class Finding:
    check: str
    state: int
    expectation: Expectation
    observed: float
    evidence: dict

    def verdict(self):
        """The verdict; its note (names read from untrusted files) with controls made visible."""
        evidence = dict(self.evidence)
        if evidence.get("files_not_read"):   # the verdict's line says what it was not judged from
            said = "; ".join(evidence["files_not_read"])
            evidence["note"] = f"{evidence['note']}; {said}" if evidence.get("note") else said
        if "note" in evidence:
            evidence["note"] = terminal(evidence["note"])
        return self.expectation.evaluate(self.observed, evidence)


@dataclass(frozen=True)
class NotJudged:
    check: str
    state: int
    reason: str


Outcome = Union[Finding, NotJudged, None]


@dataclass
class StateView:
    """What the checks of state ``index`` read; ``run`` is the :class:`~harness.runfolder.run.PrunedRun`."""

    run: object
    index: int
    stored: object                  # StoredState (the state's final file)
    previous: object = None         # StoredState of state index-1, when stored

    def bar(self, check: str, title: str, op: str, threshold: float, unit: str = "",
            tolerance: float = 0.0) -> Expectation:
        return Expectation(self.vid(check), f"{self.run.claims.method} State {self.index} {title}",
                           op, threshold, unit, tolerance)

    def vid(self, check: str) -> str:
        return f"pruning/{self.run.claims.method}/state{self.index}/{check}"

    def where(self) -> dict:
        claimed = self.run.claims.sources
        files = self.run.layout.states.get(self.index)
        unread = list(files.unread) if files is not None else []
        return {"file": self.run.shown(self.stored.path), "stored_as": self.stored.form,
                "run": self.run.source, **({"claim_from": dict(claimed)} if claimed else {}),
                **({"files_not_read": unread} if unread else {})}


def _sparsity(view: StateView) -> Outcome:
    target = view.run.target(view.index)
    if isinstance(target, str):
        return NotJudged("sparsity", view.index, target)
    stored = view.stored
    zeros, total = stored.zeros()
    far = sorted(stored.names, key=lambda n: -abs(stored.tensor_sparsity(n) - target.sparsity))
    shown = ", ".join(f"{n} {stored.tensor_sparsity(n):.2f}%" for n in far[:SHOWN])
    evidence = {**view.where(), "zeros": zeros, "prunable_weights": total,
                "claim": target.basis, "note": f"{view.run.shown(stored.path)} ({stored.form}): "
                                                 f"{shown} zero"}
    evidence.update(_best_file(view) or {})
    revived = _revived(view)
    if revived is not None and not view.run.claims.nested:
        evidence["revived_weights"] = revived
        evidence["nesting"] = "masks re-selected each state (not claimed nested): reported only"
    bar = view.bar("sparsity", f"sparsity of the stored weights ({target.basis})", "within",
                   target.sparsity, "%", target.tolerance)
    return Finding("sparsity", view.index, bar, 100.0 * zeros / total, evidence)


def log_sparsity(view: StateView) -> Outcome:
    """From a log alone: the sparsity of the model the state trained and reported on (the
    log's report at the state's start) against the claimed sparsity."""
    target = view.run.target(view.index)
    if isinstance(target, str):
        return NotJudged("sparsity", view.index, target)
    state = view.run.log.state(view.index)
    start = [r for r in state.extra.get("remaining_weights", []) if r["at_start"]]
    if not start:
        return NotJudged("sparsity", view.index, f"the log prints no 'Remaining weights' line at "
                                                 f"the start of state {view.index}")
    line = log_line(start[0])
    best = state.extra.get("best_sa_logged")
    of = "its epochs report" if best is None else f"its epochs and best SA ({best}) report"
    note = f"{line} at the start of state {view.index}: the model {of} on"
    evidence = {"run": view.run.source, "log_line": line, "claim": target.basis}
    observed = 100.0 - start[0]["remaining"]
    if view.run.claims.penalised and observed < target.sparsity - target.tolerance:
        note += _after_cut(view.run.claims.method, state, evidence)
    evidence["note"] = note
    bar = view.bar("sparsity", f"sparsity of the model the state trained, as its log reports "
                   f"({target.basis})", "within", target.sparsity, "%", target.tolerance)
    return Finding("sparsity", view.index, bar, observed, evidence)


def _after_cut(method: str, state, evidence: dict) -> str:
    """What a log says of a penalised state (RSST) that starts below its claimed sparsity: it
    trains unpruned and is cut after its last epoch, so the accuracies printed are of the
    unpruned model; the validation pass the script prints after the cut, before the state's
    summary, is the cut model's."""
    said = (f"; {method} trains this state below its claimed sparsity (a penalty on the weights "
            f"to cut) and cuts after its last epoch, so the accuracies the log prints for the "
            f"state are of that model, not the cut one")
    after = state.extra.get("final_validation")
    last = state.epochs[-1] if state.epochs else None
    if after is None or last is None or last.val_accuracy is None:
        return said + ": the cut model is judged from the stored state files (--harness-from-run)"
    evidence.update(validation_after_cut=after, validation_last_epoch=last.val_accuracy,
                    last_epoch=last.epoch)
    return (said + f"; the validation pass printed after the cut (before '* best SA') reads "
                   f"{after:.2f}% against {last.val_accuracy:.2f}% at epoch {last.epoch}, the "
                   f"last in the log")


def log_line(entry: dict) -> str:
    """A remaining-weights line of a log as evidence quotes it (a declared pattern's: its text)."""
    if entry.get("text"):
        return f"log line {entry['line']}: {entry['text']} ({entry['remaining']:.2f}% remaining)"
    return f"log line {entry['line']}: Remaining weights: {entry['remaining']:.2f}%"


def _best_file(view: StateView) -> Optional[dict]:
    best = view.run.best_state(view.index)
    if best is None or best.path == view.stored.path:
        return None
    return {"best_file": view.run.shown(best.path), "best_file_sparsity": round(best.sparsity, 4)}


def _log_consistency(view: StateView) -> Outcome:
    claim = view.run.logged_sparsity(view.index)
    if isinstance(claim, str):
        return NotJudged("log_consistency", view.index, claim)
    if isinstance(claim, list):         # the log's lines for the state were refused: it fails
        return _refused_log(view, claim)
    value, lines = claim
    stored = view.stored.sparsity
    evidence = {**view.where(), "log_lines": lines, "stored_sparsity": round(stored, 4),
                "note": f"{lines[0]} vs {view.run.shown(view.stored.path)} holding {stored:.2f}% "
                        f"zeros ({view.stored.form})"}
    bar = view.bar("log_consistency", "stored sparsity against the sparsity its log states",
                   "within", value, "%", LOG_TOLERANCE)
    return Finding("log_consistency", view.index, bar, stored, evidence)


def _refused_log(view: StateView, lines: list) -> Outcome:
    """A log whose sparsity line for the state is impossible (``Remaining weights: 1e308%``,
    ``nan%``): the check fails (observed: no finite value), naming the lines; it is never
    dropped, so an impossible log cannot pass where a plausible lie fails."""
    stored = view.stored.sparsity
    evidence = {**view.where(), "log_lines": list(lines), "stored_sparsity": round(stored, 4),
                "note": f"{lines[0]}: the log states no possible sparsity for state {view.index} "
                        f"({view.run.shown(view.stored.path)} holds {stored:.2f}% zeros)"}
    bar = view.bar("log_consistency", "stored sparsity against the sparsity its log states "
                   "(the log's line refused)", "within", stored, "%", LOG_TOLERANCE)
    return Finding("log_consistency", view.index, bar, float("nan"), evidence)


def _structure(view: StateView) -> Outcome:
    if view.index == 0 or not view.run.claims.structured:
        return None
    families = view.run.families()
    if isinstance(families, str):
        return NotJudged("structure", view.index, families)
    stored = view.stored
    found = channel_summary(families, stored.names, stored.masks, stored.weights)
    bad = {n: f for n, f in found.items() if f["unit"] != "channel"
           and f["partial"] + f["removed_not_zero"]}
    note = "; ".join(f"{n}: {f['partial']} {f['unit']}s partly pruned, {f['removed_not_zero']} "
                     f"removed but not zero" for n, f in list(bad.items())[:SHOWN])
    left = {n: f"{f['left']}/{f['total']}" for n, f in found.items() if f["unit"] != "channel"}
    evidence = {**view.where(), "left": left, **({"note": note} if note else {})}
    bar = view.bar("structure", "heads and MLP neurons partly pruned or removed but not zero",
                   "==", 0, "channels")
    return Finding("structure", view.index, bar,
                   sum(f["partial"] + f["removed_not_zero"] for f in bad.values()), evidence)


def _relative_change(weights: torch.Tensor, start: torch.Tensor, keep: torch.Tensor) -> float:
    base = float(start[keep].norm())
    return float((weights[keep] - start[keep]).norm()) / (base or 1.0)


def _trained(view: StateView) -> Outcome:
    init = view.run.init_weights()
    if isinstance(init, str):
        return NotJudged("trained", view.index, init)
    stored = view.stored
    moved = {n: _relative_change(stored.weights[n], init[n], stored.masks[n])
             for n in stored.names if bool(stored.masks[n].any())}
    still = [n for n, change in moved.items() if change <= MOVED]
    evidence = {**view.where(), "init_file": view.run.init_source(),
                "relative_change_min": round(min(moved.values(), default=0.0), 6),
                "tensors_with_kept_weights": len(moved)}
    if still:
        evidence["note"] = (f"{', '.join(still[:SHOWN])} equal the init file "
                            f"{view.run.init_source()} on every kept weight")
    bar = view.bar("trained", "prunable weights still at the init file", "==", 0, "tensors")
    return Finding("trained", view.index, bar, len(still), evidence)


def _rewind(view: StateView) -> Outcome:
    claims = view.run.claims
    if view.index == 0:
        return None
    if claims.rewind is None:
        return NotJudged("rewind", view.index, "the run claims no rewind point its files can show")
    start = view.run.rewind_weights(view.index)
    if isinstance(start, str):
        return NotJudged("rewind", view.index, start)
    saved = _saved_init_differs(view, start)
    memory = _pruned_memory(view, start)
    if saved is None and memory is None:
        return NotJudged("rewind", view.index, "no evidence of the start point in the files: no "
                         "init_weight in the checkpoint and no weight_orig of pruned weights")
    bad = sorted(set(saved or []) | set(memory or []), key=view.stored.names.index)
    notes = []
    if saved:
        notes.append(f"init_weight in {view.run.shown(view.stored.path)} differs from "
                     f"{view.run.rewind_source(view.index)} in {len(saved)} prunable tensors "
                     f"({', '.join(saved[:SHOWN])})")
    if memory:
        notes.append(f"the pruned entries of weight_orig of {len(memory)} tensors "
                     f"({', '.join(memory[:SHOWN])}) lie closer to state {view.index - 1}'s "
                     f"weights than to {view.run.rewind_source(view.index)}")
    evidence = {**view.where(), "claimed_start": claims.rewind,
                "init_weight_differs": saved, "started_from_previous_state": memory,
                **({"note": "; ".join(notes)} if notes else {})}
    bar = view.bar("rewind", f"prunable tensors contradicting the rewind to {claims.rewind}",
                   "==", 0, "tensors")
    return Finding("rewind", view.index, bar, len(bad), evidence)


def _saved_init_differs(view: StateView, start: dict) -> Optional[list]:
    own = view.stored.init_weight
    if own is None or view.run.claims.rewind != "init":
        return None
    return [n for n in view.stored.names if n in own and not torch.equal(own[n], start[n])]


def _pruned_memory(view: StateView, start: dict) -> Optional[list]:
    """Tensors whose pruned entries (no gradient reaches them; only weight decay) sit closer to
    the previous state's weights than to the claimed start, where the two differ."""
    stored, prev = view.stored, view.previous
    if not stored.raw or prev is None:
        return None
    closer = []
    for name, orig in stored.raw.items():
        before = prev.raw.get(name, prev.weights[name])
        where = ~stored.masks[name] & prev.masks[name] & (before != start[name])
        if not bool(where.any()):
            continue
        to_start = float((orig[where] - start[name][where]).norm())
        to_prev = float((orig[where] - before[where]).norm())
        if to_prev < to_start:
            closer.append(name)
    return closer


def _revived_each(view: StateView) -> Optional[dict]:
    """Per tensor, the weights the previous state had pruned that this one keeps or holds non-zero."""
    prev, stored = view.previous, view.stored
    if prev is None:
        return None
    return {n: int((~prev.masks[n] & (stored.masks[n] | (stored.weights[n] != 0))).sum())
            for n in stored.names if n in prev.masks}


def _revived(view: StateView) -> Optional[int]:
    each = _revived_each(view)
    return None if each is None else sum(each.values())


def _nesting(view: StateView) -> Outcome:
    if view.index == 0:
        return None
    if not view.run.claims.nested:
        return NotJudged("nesting", view.index, "the run re-selects its masks each state (no "
                         "nesting claimed): the weights it revives are in the sparsity evidence")
    revived = _revived(view)
    if revived is None:
        return NotJudged("nesting", view.index, f"state {view.index - 1} is not stored")
    evidence = {**view.where(), "previous_file": view.run.shown(view.previous.path)}
    if revived:
        each = sorted(_revived_each(view).items(), key=lambda item: -item[1])
        shown = ", ".join(f"{n} {c}" for n, c in each[:SHOWN] if c)
        evidence["note"] = (f"{view.run.shown(view.stored.path)} ({view.stored.form}) holds "
                            f"{revived} weights {evidence['previous_file']} had pruned: {shown}")
    bar = view.bar("nesting", "weights pruned earlier and alive again", "==", 0, "weights")
    return Finding("nesting", view.index, bar, revived, evidence)


def _penalty(view: StateView) -> Outcome:
    if view.index == 0 or not view.run.claims.penalised:
        return None
    measured = view.run.penalty_measure(view)
    if isinstance(measured, str):
        return NotJudged("penalty", view.index, measured)
    ratio = measured.pop("ratio")
    evidence = {**view.where(), **{k: (round(v, 6) if isinstance(v, float) else v)
                                   for k, v in measured.items()}}
    if ratio > PENALTY_BAR:
        evidence["note"] = (f"in {view.run.shown(view.stored.path)} the channels to be removed keep "
                            f"{100 * ratio:.0f}% of the kept channels' RMS: no penalty drove them down")
    bar = view.bar("penalty", "RMS of the channels to remove over the kept ones (penalty acted)",
                   "<=", PENALTY_BAR)
    return Finding("penalty", view.index, bar, ratio, evidence)


def weights_penalty(run, stored) -> Union[dict, str]:
    """The weight measure of :func:`_penalty` on a file saved before the cut."""
    families = run.families()
    if isinstance(families, str):
        return families
    claims = run.claims
    measured = removable_ratio(families, stored.names, stored.weights,
                               {"head": claims.rate, "neuron": claims.mlp_rate})
    if measured is None:
        return "no channel of the stored weights to rank"
    return {**measured, "measure": "channels ranked by L1 norm at the state's end, the claimed "
                                   "rates of each pool removed"}


def _reported_accuracy(view: StateView) -> Outcome:
    measured = view.run.evaluate(view.index)
    if isinstance(measured, str):
        return NotJudged("reported_accuracy", view.index, measured)
    correct, n, reported, evidence = measured
    from harness.expect import wilson_interval

    low, high = wilson_interval(correct, n)
    accuracy = 100.0 * correct / n
    tolerance = max((high - accuracy) if reported >= accuracy else (accuracy - low), 1e-9)
    evidence = {**evidence, "n": n, "correct": correct, "wilson95": [round(low, 4), round(high, 4)],
                "reported": reported}
    if not low <= reported <= high:
        evidence["note"] = (f"{evidence['file']} evaluated: {accuracy:.2f}% ({correct}/{n}, Wilson "
                            f"95% [{low:.2f}, {high:.2f}]) vs reported {reported:.2f}% "
                            f"({evidence['reported_from']}); model inputs: "
                            f"{evidence['preprocessing']}")
    bar = view.bar("reported_accuracy", "accuracy of the stored model against the accuracy "
                   "the run reported", "within", reported, "%", tolerance)
    return Finding("reported_accuracy", view.index, bar, accuracy, evidence)


CHECKS: dict[str, Callable[[StateView], Outcome]] = {
    "sparsity": _sparsity,
    "log_consistency": _log_consistency,
    "structure": _structure,
    "trained": _trained,
    "rewind": _rewind,
    "nesting": _nesting,
    "penalty": _penalty,
    "reported_accuracy": _reported_accuracy,
}

