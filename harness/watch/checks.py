"""The verdicts a watched run earns, each decided as soon as its evidence is in the log.

Every check reads the record so far (:class:`~harness.watch.record.LiveRecord`) and returns what
it decided now: a :class:`~harness.expect.Verdict`, or a line saying why it will not judge. Each
is the judgement the rest of the harness makes, on the same bars:

- ``init``: the init file the log's arguments name, judged by its weights
  (:func:`~harness.forensics.inspection.inspect_checkpoint`, as suites/baseline's
  ``test_init_not_random``), before the first step;
- ``pretrained_start``: the test accuracy after epoch 0 of a run that claims a pretrained init
  against the dataset's floor (as ``test_pretrained_start``);
- ``loss``: a training loss that is not a finite number (NaN, inf) fails its state at once;
- ``loss_growth``: a finite training loss that grew past LOSS_GROWTH times the state's first
  one (floored at 1.0, so a fine-tune that starts near 0 is not failed for reaching 1) fails its
  state when the log is next read (at the next evaluation, or READ_EVERY lines on): the run is
  exploding;
- ``epochs``: a state that evaluates more epochs than the run's arguments declare;
- ``sparsity``: a pruning log's ``Remaining weights`` at each state's start against its claimed
  schedule (:mod:`harness.runfolder`, as ``harness log --checks``);
- ``accuracy``: State 0's best test accuracy against its bar, once State 0 ended.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from harness.expect import Expectation, Verdict
from harness.record import EpochRecord, RunRecord, StateRecord
from harness.start import epoch_zero, start_evidence
from harness.timmref import TimmRefError, timm_name


@dataclass
class Context:
    """What the checks share: the bars, where a relative init path is looked for, and what was
    decided already (each key once)."""

    book: object                       # harness.suite.BarBook
    init_dirs: tuple = ()
    auto_profile: bool = False
    done: set = field(default_factory=set)

    def first(self, key: str) -> bool:
        """True the first time ``key`` is decided (and marks it decided)."""
        if key in self.done:
            return False
        self.done.add(key)
        return True

    def bar(self, verdict_id: str):
        """The bar as it applies (overrides included), or the line saying it is not declared."""
        if self.book.has(verdict_id):
            return self.book.get(verdict_id)
        return (f"{verdict_id}: not judged: no bar with this id in profile {self.book.profile} "
                f"(declare it in a suite's HARNESS_BARS or the ini file's harness_bars)")


def epoch_verdict(bar: Expectation, epoch: EpochRecord, evidence: dict) -> Verdict:
    """An epoch's test accuracy against a bar, as ``harness.check_epoch`` judges it."""
    if epoch.test_correct is not None and epoch.test_n:
        return bar.evaluate_accuracy(epoch.test_correct, epoch.test_n, evidence)
    merged = {"n": None, "interval": "none: the record gives no sample count, only the printed "
                                     "accuracy"}
    merged.update(evidence)
    return bar.evaluate(epoch.test_accuracy, merged)


def state_ended(record: RunRecord, index: int, run_over: bool) -> bool:
    """Whether state ``index`` is over: it printed its end, a later state began, or the run
    ended on its own with it last."""
    state = record.state(index)
    if state is None:
        return False
    if state.extra.get("completed") or any(s.index > index for s in record.states):
        return True
    return run_over


def _dataset(record: RunRecord) -> str:
    return record.dataset or "unknown"


# --- the checks ----------------------------------------------------------------------------
def init_file(record: RunRecord, ctx: Context, run_over: bool) -> list:
    if not (record.spec or {}).get("args") or not _arguments_read(record, run_over):
        return []
    if not ctx.first("init"):
        return []
    init = record.init
    if not record.claims_pretrained or init is None:
        return ["init: the log's arguments claim no pretrained start; no init file is judged"]
    try:
        hub = timm_name(init)
    except TimmRefError:
        return [f"init: the log's arguments claim timm's hub weights ({init!r}) but name no "
                f"model; no init file is judged"]
    if hub is not None:
        return [f"init: {init} (timm's hub weights) is no file to judge"]
    path = _find(init, ctx.init_dirs)
    if path is None:
        where = ", ".join(str(d) for d in ctx.init_dirs) or "the working folder"
        return [f"init: {init} named in the log's arguments is not a file here (looked in "
                f"{where}); pass --init-dir DIR to judge it"]
    from harness.forensics.inspection import claim_verdict, inspect_checkpoint

    result = inspect_checkpoint(path, claim="the init of the watched run")
    return [claim_verdict(result, f"baseline/{_dataset(record)}/init/pretrained")]


def _arguments_read(record: RunRecord, run_over: bool) -> bool:
    """Whether the log's arguments are all in: a research log prints them on one line; other
    formats (MLLOG events) may spread them until the first evaluation."""
    return record.source == "log:research" or run_over or any(s.epochs for s in record.states)


def _find(init: str, dirs: tuple) -> Optional[Path]:
    given = Path(init)
    candidates = [given] if given.is_absolute() else [Path(d) / given for d in dirs] or [given]
    return next((p for p in candidates if p.is_file()), None)


def pretrained_start(record: RunRecord, ctx: Context, run_over: bool) -> list:
    state = record.state(0)
    first = epoch_zero(state) if state is not None else None
    if first is None or not ctx.first("pretrained_start"):
        return []
    if not record.claims_pretrained:
        return ["pretrained start: the log claims no pretrained init; epoch 0 is not judged as one"]
    bar = ctx.bar(f"baseline/{_dataset(record)}/state0/pretrained_start")
    if isinstance(bar, str):
        return [bar]
    return [epoch_verdict(bar, first, start_evidence(record, state, first, bar))]


def finite_loss(record: RunRecord, ctx: Context, run_over: bool) -> list:
    out = []
    for state in record.states:
        bad = _non_finite(state)
        over = state_ended(record, state.index, run_over)
        if (bad or over) and ctx.first(f"loss/{state.index}"):
            bar = Expectation(f"watch/{_dataset(record)}/state{state.index}/loss_finite",
                              f"State {state.index} training losses that are not finite numbers",
                              "==", 0, "values")
            note = (f"{bad[0]}: the run diverged" if bad else
                    f"every training loss of state {state.index} in the log is a finite number")
            out.append(bar.evaluate(len(bad), {"note": note, "non_finite": bad[:10],
                                               "run_id": record.run_id}))
    return out


def _losses(state: StateRecord) -> list:
    """(kind, loss, where) of the state's training losses in the order printed: the first-batch
    loss, the running losses inside epoch 0 (its step 0 left out when the first-batch loss is
    there: the same value) and each epoch's loss."""
    found = [] if state.first_batch_loss is None else [("first-batch loss", state.first_batch_loss, "")]
    found += [("running loss", loss, f" at step {step}/{steps} of epoch 0")
              for step, steps, loss, _ in state.intra_epoch
              if loss is not None and not (step == 0 and found)]
    found += [("training loss", e.train_loss, f" of epoch {e.epoch}") for e in state.epochs
              if e.train_loss is not None]
    return found


def _non_finite(state: StateRecord) -> list:
    return [f"{kind} {loss}{where}" for kind, loss, where in _losses(state) if not math.isfinite(loss)]


LOSS_GROWTH = 10.0      # a loss this many times the state's first (floored at 1.0) is exploding


def loss_growth(record: RunRecord, ctx: Context, run_over: bool) -> list:
    out = []
    for state in record.states:
        losses = _finite_losses(state)
        over = state_ended(record, state.index, run_over)
        if len(losses) < 2:
            if over and ctx.first(f"loss_growth/{state.index}"):
                out.append(f"loss growth of state {state.index}: not judged: the log gives "
                           f"{len(losses)} finite training loss(es) for it")
            continue
        (_, first), (where, worst) = losses[0], max(losses[1:], key=lambda item: item[1])
        ratio = worst / max(first, 1.0)
        if (ratio > LOSS_GROWTH or over) and ctx.first(f"loss_growth/{state.index}"):
            bar = Expectation(f"watch/{_dataset(record)}/state{state.index}/loss_growth",
                              f"State {state.index} largest training loss over its first "
                              f"(floored at 1.0)", "<=", LOSS_GROWTH, "x")
            note = (f"{where} is {worst:.4g}, {ratio:.3g}x the state's first loss {first:.4g}"
                    + (": the run is exploding" if ratio > LOSS_GROWTH else ""))
            out.append(bar.evaluate(ratio, {"note": note, "first_loss": first, "largest_loss": worst,
                                            "largest_at": where, "run_id": record.run_id}))
    return out


def _finite_losses(state: StateRecord) -> list:
    """(where, loss) of the state's finite training losses, in the order printed."""
    return [(f"the {kind}{where}", float(loss)) for kind, loss, where in _losses(state)
            if math.isfinite(loss)]


def epoch_budget(record: RunRecord, ctx: Context, run_over: bool) -> list:
    declared = (record.spec or {}).get("recipe", {}).get("epochs")
    if not isinstance(declared, int) or isinstance(declared, bool) or declared < 1:
        return []
    out = []
    for state in record.states:
        count = len(state.epochs)
        over = state_ended(record, state.index, run_over)
        if (count > declared or over) and ctx.first(f"epochs/{state.index}"):
            bar = Expectation(f"watch/{_dataset(record)}/state{state.index}/epochs",
                              f"State {state.index} evaluated epochs (the run's arguments "
                              f"declare {declared})", "<=", declared, "epochs")
            out.append(bar.evaluate(count, {"note": f"{count} evaluated epochs in the log",
                                            "run_id": record.run_id}))
    return out


def sparsity(record: RunRecord, ctx: Context, run_over: bool) -> list:
    args = (record.spec or {}).get("args") or {}
    started = [s for s in record.states if s.epochs and f"sparsity/{s.index}" not in ctx.done]
    if "struct" not in args or not started:
        return []
    from harness.runfolder import Finding, NotJudged, RunFolderError
    from harness.runfolder.claims import research_claims
    from harness.runfolder.layout import FolderLayout
    from harness.runfolder.run import PrunedRun

    folder = Path(str(record.environment.get("path") or ".")).parent
    try:    # as runfolder.opener.open_log builds it, without keeping it in the opener's cache
        run = PrunedRun(FolderLayout(folder, "log"), research_claims(args), record, log=record,
                        heads=record.notes.get("heads"))
        outcomes = {o.state: o for o in run.outcomes("sparsity")}
    except RunFolderError as exc:
        ctx.done.update(f"sparsity/{s.index}" for s in record.states)
        return [f"sparsity: not judged: {exc}"]
    out = []
    for state in started:
        outcome = outcomes.get(state.index)
        if outcome is None or not ctx.first(f"sparsity/{state.index}"):
            continue
        if isinstance(outcome, Finding):
            out.append(outcome.verdict())
        elif isinstance(outcome, NotJudged):
            out.append(f"sparsity of state {state.index}: not judged: {outcome.reason}")
    return out


def state0_accuracy(record: RunRecord, ctx: Context, run_over: bool) -> list:
    state = record.state(0)
    if state is None or not state_ended(record, 0, run_over) or not ctx.first("accuracy/0"):
        return []
    best = state.best_epoch
    if best is None:
        return ["State 0 accuracy: not judged: no test accuracy of state 0 in the log"]
    bar = ctx.bar(f"baseline/{_dataset(record)}/state0/accuracy")
    if isinstance(bar, str):
        return [bar]
    evidence = {"metric": "best test accuracy over the state's epochs", "best_epoch": best.epoch,
                "epochs": len(state.epochs), "final_accuracy": state.final_accuracy,
                "run_id": record.run_id, "source": record.source, "init": record.init}
    return [epoch_verdict(bar, best, evidence)]


CHECKS: dict[str, Callable[[RunRecord, Context, bool], list]] = {
    "init": init_file, "pretrained_start": pretrained_start, "loss": finite_loss,
    "loss_growth": loss_growth, "epochs": epoch_budget, "sparsity": sparsity, "accuracy": state0_accuracy,
}


def decide(record: RunRecord, ctx: Context, run_over: bool = False) -> list:
    """What every check decided now (Verdicts and not-judged lines), in CHECKS' order."""
    out = []
    for check in CHECKS.values():
        out += check(record, ctx, run_over)
    return out
