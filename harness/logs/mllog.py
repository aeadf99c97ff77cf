"""MLPerf training logs (``:::MLLOG``, v0.6 ``:::MLL`` and v0.5 ``:::MLPv0.5.0`` lines; see
:mod:`harness.logs.mlperf` for the dialects and what each benchmark's ``eval_accuracy`` is).

Read here: ``eval_accuracy`` (a fraction, as MLPerf logs it; a value above 1 is read as percent)
with its ``epoch_num``; ``eval_samples`` (the test set size: accuracies get a correct count only
where the benchmark's metric is the share of those samples scored right, i.e. top-1 accuracy, not
mAP, Dice or masked-LM accuracy); ``train_loss`` / ``train_accuracy`` with ``epoch_num`` and
``step`` (the first batch and the curve inside the first epoch); ``epoch_start`` / ``epoch_stop``
and ``block_start`` (``first_epoch_num``, ``epoch_count``), which say how many epochs were trained
when an evaluation came; ``run_start`` / ``run_stop`` (``status``); every other scalar event
before the first epoch is a run argument. The run is state 0.

An epoch's index in the record is the number of epochs trained when it was evaluated, minus one
(epoch 0: evaluated after one epoch), read from the log's own events: with epoch starts, the
printed ``epoch_num`` counted from the first started epoch (MLPerf numbers from 0 or from 1);
with blocks only, the first block's ``epoch_count`` for the first evaluation and the printed
``epoch_num`` steps after it. Where neither says (or ``epoch_num`` counts samples, as BERT's
does) the epochs are not known and the record says so: no evaluation is taken as "after epoch 0".
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

from harness.logs import mlperf
from harness.logs.bounds import (MAX_CURVE_POINTS, MAX_EPOCHS, Listed, add_argument,
                                 percent_problem)
from harness.logs.namespace import read_namespace
from harness.logs.source import LogLines, Tally
from harness.sampling import even_sample
from harness.record import EpochRecord, StateRecord

NAME = "mllog"
DESCRIPTION = "MLPerf ':::MLLOG {json}' lines (and v0.5/v0.6 ':::MLPv0.5.0' / ':::MLL' lines)"
MAX_SAMPLES = 10**12   # eval_samples above this is no test set
_CONTROL = {"run_start", "run_stop", "epoch_start", "epoch_stop", "block_start", "block_stop",
            "init_start", "init_stop", "eval_start", "eval_stop", "cache_clear", "run_final"}


def sniff(lines: LogLines) -> int:
    return sum(1 for _, text in lines if mlperf.sniff(text))


@dataclass
class _Eval:
    epoch_num: Optional[int]
    accuracy: float
    line: int


@dataclass
class _Run:
    args: dict = field(default_factory=dict)
    started: bool = False
    stopped: Optional[str] = None
    eval_n: Optional[int] = None
    first_epoch: Optional[int] = None
    evals: list = field(default_factory=list)      # _Eval, in the order the log printed them
    refused: dict = field(default_factory=dict)    # epoch_num -> why a value of it was refused
    losses: dict = field(default_factory=dict)     # epoch_num -> last train loss
    curve: dict = field(default_factory=dict)      # step -> [steps, loss, accuracy] of the first epoch
    starts: set = field(default_factory=set)       # epoch_num of epoch_start events
    blocks: list = field(default_factory=list)     # (first_epoch_num, epoch_count) of block_start
    cut: Listed = field(default_factory=Listed)
    notes: list = field(default_factory=list)
    namespace_read: bool = False
    read_last: bool = False                        # the unfinished last line was a whole event
    problem: Optional[str] = None                  # why the last event's value was refused
    number: int = 0                                # the line of the event being read

    def epoch(self, meta: dict, key: str = "epoch_num") -> Optional[int]:
        value = meta.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
        return int(value)

    def event(self, key: str, value: Any, meta: dict) -> bool:
        self.problem = None
        epoch = self.epoch(meta)
        if key in _CONTROL:
            return self.control(key, epoch, meta)
        if key == "eval_accuracy":
            return self.evaluation(value, epoch)
        if key == "eval_samples":
            return self.samples(value)
        if key in ("train_loss", "train_accuracy") and epoch is not None and _number(value):
            return self.train(key, float(value), epoch, meta)
        if (not self.started or key.startswith("submission_") or key == "eval_target") and \
                (_number(value) or isinstance(value, (str, bool))):
            return self.argument(key, value)   # these may come late (TPU logs, v0.5)
        return False

    def refuse(self, why: str, epoch: Optional[int] = None) -> bool:
        self.problem = why
        if epoch is not None:
            self.refused.setdefault(epoch, f"line {self.number}: {why}")
        return False

    def evaluation(self, value: Any, epoch: Optional[int]) -> bool:
        if isinstance(value, list) and value and _number(value[0]):
            self.note(f"eval_accuracy holds {len(value)} values (e.g. box and mask mAP): the "
                      f"first entered")
            value = value[0]
        acc = _percent(value) if _number(value) else value
        problem = percent_problem(acc, "eval_accuracy")
        if problem:
            return self.refuse(problem, epoch)
        if len(self.evals) >= MAX_EPOCHS:
            return self.refuse(f"more than {MAX_EPOCHS:,} evaluations: epoch_num {epoch} not read")
        self.started = True
        self.evals.append(_Eval(epoch, acc, self.number))
        return True

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def samples(self, value: Any) -> bool:
        if not _number(value) or value != int(value) or not 0 < value <= MAX_SAMPLES:
            return self.refuse(f"eval_samples {value!r} is not a whole number in 1..{MAX_SAMPLES:,}")
        self.eval_n = int(value)
        return True

    def argument(self, key: str, value: Any) -> bool:
        return add_argument(self.args, key, value, self.cut)

    def control(self, key: str, epoch: Optional[int], meta: dict) -> bool:
        if key == "run_start":
            self.started = True
            if meta.get("benchmark") and "submission_benchmark" not in self.args:
                self.argument("submission_benchmark", str(meta["benchmark"]))
        elif key == "run_stop":
            self.stopped = str(meta.get("status", "unknown"))[:80]
        elif key == "epoch_start" and epoch is not None:
            self.started = True
            if len(self.starts) < MAX_EPOCHS:
                self.starts.add(epoch)
            if self.first_epoch is None or epoch < self.first_epoch:
                self.first_epoch = epoch
        elif key == "block_start" and len(self.blocks) < MAX_EPOCHS:
            first, count = self.epoch(meta, "first_epoch_num"), self.epoch(meta, "epoch_count")
            if first is not None and count is not None and count > 0:
                self.blocks.append((first, count))
        return True  # epoch_stop, block_stop and eval intervals carry nothing more

    def train(self, key: str, value: float, epoch: int, meta: dict) -> bool:
        if key == "train_accuracy":
            value = _percent(value)
            problem = percent_problem(value, "train_accuracy")
            if problem:
                return self.refuse(problem, epoch)
        self.started = True
        if self.first_epoch is None:
            self.first_epoch = epoch
        if key == "train_loss":
            self.losses[epoch] = value
        step = meta.get("step")
        if epoch == self.first_epoch and isinstance(step, int) and not isinstance(step, bool):
            steps = meta.get("steps")
            point = self.curve.setdefault(step, [steps if isinstance(steps, int) else None, None, None])
            point[1 if key == "train_loss" else 2] = value
        return True

    # --- the record ---------------------------------------------------------------------
    def state(self) -> Optional[StateRecord]:
        if not self.started:
            return None
        metric = mlperf.metric_of(self.args.get("submission_benchmark"))
        state = StateRecord(index=0, test_n=self.eval_n if metric.proportion_of_samples else None)
        evals = self.entered(metric)
        trained, why = _Epochs(self, metric).trained(evals)
        if not metric.higher_is_better:
            state.extra["lower_is_better_scores"] = [[e.epoch_num, e.accuracy] for e in evals]
            evals = []
            self.note(f"eval_accuracy is a {metric.name} (lower is better): kept in the state's "
                      f"lower_is_better_scores, not entered as accuracies")
        for index, ev in enumerate(evals):
            done = trained[index] if trained is not None else None
            if done == 0:
                state.extra["evaluated_before_training"] = ev.accuracy
                continue
            number = done - 1 if done is not None else (ev.epoch_num if ev.epoch_num is not None
                                                        else index)
            state.epochs.append(self._epoch_record(ev, number, metric))
        self._finish(state, metric, evals, trained, why)
        return state

    def entered(self, metric: mlperf.Metric) -> list:
        """The evaluations entered: a refused epoch's are left out; where epoch_num counts
        epochs, a repeated one keeps the first place and takes the last value."""
        evals = [e for e in self.evals if e.epoch_num is None or e.epoch_num not in self.refused]
        if metric.epoch_num_counts_samples:
            return evals
        by_epoch: dict = {}
        for e in evals:
            key = e.epoch_num if e.epoch_num is not None else ("line", e.line)
            if key in by_epoch:
                by_epoch[key].accuracy = e.accuracy
            else:
                by_epoch[key] = _Eval(e.epoch_num, e.accuracy, e.line)
        return list(by_epoch.values())

    def _finish(self, state: StateRecord, metric: mlperf.Metric, evals: list,
                trained: Optional[list], why: Optional[str]) -> None:
        curve = self.done_curve()
        state.intra_epoch = [(s, p[0], p[1], p[2]) for s, p in even_sample(curve, MAX_CURVE_POINTS)]
        if curve and curve[0][0] == 0:
            state.first_batch_loss, state.first_batch_accuracy = curve[0][1][1], curve[0][1][2]
        state.extra["metric"] = metric.name
        state.extra["epoch_num_at_evaluation"] = [e.epoch_num for e in evals]
        if trained is not None:
            state.extra["epochs_trained_at_evaluation"] = list(trained)
            state.extra["epoch_num_of_epoch_0"] = min(self.starts) if self.starts else None
        else:
            state.extra["epochs_unknown"] = why
        if self.eval_n and metric.proportion_of_samples:
            state.extra["test_correct_from"] = "eval_accuracy x eval_samples, rounded"
        elif self.eval_n:
            state.extra["eval_samples"] = self.eval_n
            state.extra["test_correct_from"] = (f"none: a {metric.name} is not the share of the "
                                                f"{self.eval_n:,} eval_samples scored right")

    def done_curve(self) -> list:
        """The first-epoch points, by step, that entered: each with its loss and accuracy, or once
        the log moved past it (a later step, or an evaluation), so a cut between its two events
        never shows half."""
        last, evaluated = max(self.curve, default=None), bool(self.evals)
        return sorted((s, p) for s, p in self.curve.items()
                      if p[1] is not None and (p[2] is not None or s < last or evaluated))

    def _epoch_record(self, ev: _Eval, index: int, metric: mlperf.Metric) -> EpochRecord:
        counted = self.eval_n if metric.proportion_of_samples else None
        correct = round(ev.accuracy * counted / 100) if counted else None
        return EpochRecord(epoch=index, train_loss=self.losses.get(ev.epoch_num, math.nan),
                           train_accuracy=math.nan, test_accuracy=ev.accuracy,
                           test_correct=correct, test_n=counted if correct is not None else None)

    def dropped(self) -> list:
        return [f"epoch_num {num}: not entered ({why})" for num, why in self.refused.items()]


class _Epochs:
    """How many epochs were trained when each evaluation came, from the log's own events."""

    def __init__(self, run: _Run, metric: mlperf.Metric) -> None:
        self.run, self.metric = run, metric

    def trained(self, evals: list) -> tuple:
        """(epochs trained at each evaluation, None) or (None, why they are not known)."""
        nums = [e.epoch_num for e in evals]
        if not evals:
            return [], None
        if self.metric.epoch_num_counts_samples:
            return None, (f"epoch_num of a {self.metric.name.split(' (')[0]} evaluation counts "
                          f"training samples (or stays fixed), not epochs")
        if any(n is None for n in nums):
            return None, "an eval_accuracy without epoch_num"
        if self.run.starts:
            base = min(self.run.starts)
            return [max(0, n - base + 1) for n in nums], None
        if self.run.blocks:
            count = self.run.blocks[0][1]
            return [max(0, n - nums[0] + count) for n in nums], None
        return None, ("no epoch_start or block_start events: whether epoch_num counts from 0 or "
                      "from 1, and how many epochs came before the first evaluation, is not in "
                      "the log")


def parse(lines: LogLines) -> dict:
    run, tally = _Run(), Tally()
    for number, text in lines:
        event, run.number = mlperf.event(text), number
        if isinstance(event, str):
            tally.refuse(number, text, event)
        elif event is not None and run.event(*event):
            tally.hit()
        elif event is None and _namespace(run, text):
            tally.hit()
        elif run.problem:
            tally.refuse(number, text, run.problem)
        else:
            tally.miss(number, text)
    _last_event(lines, run, tally)
    state = run.state()
    dropped = Listed()
    for entry in run.dropped():
        dropped.add(entry)
    metric = mlperf.metric_of(run.args.get("submission_benchmark"))
    return {"args": run.args, "states": [state] if state else [], "tally": tally,
            "dataset": metric.dataset, "num_classes": metric.classes,
            "complete": _complete(run, state), "dropped": dropped.as_list(),
            "notes": {"run_stop_status": run.stopped, "arguments_cut": run.cut.as_list(),
                      "intra_epoch_curve_cut": _curve_note(run), "mlperf_notes": run.notes,
                      **({"unfinished_last_line": None} if run.read_last else {})}}


def _namespace(run: _Run, text: str) -> bool:
    """The first ``Namespace(...)`` line (argparse's arguments, often behind a logging prefix
    such as ``2019-05-23 18:26:00,488 Node[0] start with arguments``) gives run arguments."""
    at = text.find("Namespace(")
    if at < 0 or run.namespace_read:
        return False
    run.namespace_read = True
    args: dict = {}
    read_namespace(text, args, run.cut, at + len("Namespace("))
    for key, value in args.items():
        if key not in run.args:
            run.argument(key, value)
    return True


def _complete(run: _Run, state: Optional[StateRecord]) -> bool:
    """run_stop with status success; a v0.5 run_stop that names no status counts when the run
    reached its printed ``eval_target``."""
    if run.stopped == "success":
        return True
    target = run.args.get("eval_target")
    best = state.best_accuracy if state is not None else None
    return (run.stopped == "unknown" and _number(target) and best is not None
            and best >= _percent(float(target)))


def _last_event(lines: LogLines, run: _Run, tally: Tally) -> None:
    """A last line without a line ending is set aside as a run still writing, unless it is a
    whole event: a JSON object that closes is not half a value (MLPerf result files often end
    with run_stop and no newline)."""
    if lines.unfinished is None or len(lines.unfinished) >= 4096:
        return
    event = mlperf.event(lines.unfinished)
    run.number = lines.count + 1
    if isinstance(event, tuple) and run.event(*event):
        tally.hit()
        run.notes.append("the last line has no line ending; it is a whole event and was read")
        run.read_last = True


def _curve_note(run: _Run) -> list:
    points = len(run.done_curve())
    if points <= MAX_CURVE_POINTS:
        return []
    return [f"state 0: {MAX_CURVE_POINTS:,} of the {points:,} points of the curve inside epoch 0 "
            f"kept, evenly spaced (the first and the last among them)"]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _percent(value: float) -> float:
    """MLPerf logs accuracies as fractions; a value above 1 was already in percent."""
    return round(100.0 * value, 9) if value <= 1.0 else float(value)
