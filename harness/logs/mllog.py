"""MLPerf-style logs: ``:::MLLOG {json}`` lines (mlperf_logging's format).

Each event is ``{"key", "value", "event_type", "metadata": {"epoch_num", ...}}``. Read here:
``eval_accuracy`` (a fraction, as MLPerf logs it; a value above 1 is read as percent) with its
``epoch_num`` (an epoch enters the record with it; epochs without one are left out); ``eval_samples`` (the test set size, so accuracies get a sample count);
``train_loss`` / ``train_accuracy`` with ``epoch_num`` and ``step`` (``steps`` optional: the
first batch and the learning curve inside the first epoch); ``epoch_start`` / ``epoch_stop``;
``run_start`` / ``run_stop`` (``status``); every other scalar event before the first epoch is a
run argument (``submission_benchmark``, ``global_batch_size``, ``opt_base_learning_rate``,
``dataset``, ``init_checkpoint``, ``pretrained``, ``train_epochs``, ...). The run is state 0.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from harness.logs.bounds import (MAX_CURVE_POINTS, MAX_EPOCHS, MAX_EVENT_CHARS, Listed,
                                 add_argument, even_sample, percent_problem)
from harness.logs.source import LogLines, Tally
from harness.record import EpochRecord, StateRecord

NAME = "mllog"
DESCRIPTION = "MLPerf ':::MLLOG {json}' lines"
PREFIX = ":::MLLOG"
MAX_SAMPLES = 10**12   # eval_samples above this is no test set
_CONTROL = {"run_start", "run_stop", "epoch_start", "epoch_stop", "block_start", "block_stop",
            "init_start", "init_stop", "eval_start", "eval_stop", "cache_clear"}


def sniff(lines: LogLines) -> int:
    return sum(1 for _, text in lines if PREFIX in text)


@dataclass
class _Run:
    args: dict = field(default_factory=dict)
    started: bool = False
    stopped: Optional[str] = None
    eval_n: Optional[int] = None
    first_epoch: Optional[int] = None
    evals: dict = field(default_factory=dict)      # epoch_num -> accuracy in %, in completion order
    refused: dict = field(default_factory=dict)    # epoch_num -> why a value of it was refused
    losses: dict = field(default_factory=dict)     # epoch_num -> last train loss
    curve: dict = field(default_factory=dict)      # step -> [steps, loss, accuracy] of the first epoch
    cut: Listed = field(default_factory=Listed)
    problem: Optional[str] = None                  # why the last event's value was refused
    number: int = 0                                # the line of the event being read

    def epoch(self, meta: dict) -> Optional[int]:
        value = meta.get("epoch_num")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
        return int(value)

    def event(self, key: str, value: Any, meta: dict) -> bool:
        self.problem = None
        epoch = self.epoch(meta)
        if key in _CONTROL:
            return self.control(key, epoch, meta)
        if key == "eval_accuracy" and epoch is not None:
            return self.evaluation(value, epoch)
        if key == "eval_samples":
            return self.samples(value)
        if key in ("train_loss", "train_accuracy") and epoch is not None and _number(value):
            return self.train(key, float(value), epoch, meta)
        if not self.started and (_number(value) or isinstance(value, (str, bool))):
            return self.argument(key, value)
        return False

    def refuse(self, why: str, epoch: Optional[int] = None) -> bool:
        self.problem = why
        if epoch is not None:
            self.refused.setdefault(epoch, f"line {self.number}: {why}")
            self.evals.pop(epoch, None)
        return False

    def evaluation(self, value: Any, epoch: int) -> bool:
        acc = _percent(value) if _number(value) else value
        problem = percent_problem(acc, "eval_accuracy")
        if problem:
            return self.refuse(problem, epoch)
        if epoch not in self.evals and len(self.evals) >= MAX_EPOCHS:
            return self.refuse(f"more than {MAX_EPOCHS:,} evaluated epochs: epoch_num {epoch} not read")
        self.started = True
        if epoch not in self.refused:
            self.evals[epoch] = acc   # a repeated eval keeps the epoch's place, takes the new value
        return True

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
        elif key == "run_stop":
            self.stopped = str(meta.get("status", "unknown"))[:80]
        elif key == "epoch_start" and epoch is not None:
            self.started = True
            if self.first_epoch is None or epoch < self.first_epoch:
                self.first_epoch = epoch
        return True  # epoch_stop, block and eval intervals: an epoch enters with its eval_accuracy

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

    def state(self) -> Optional[StateRecord]:
        if not self.started:
            return None
        base = self.first_epoch
        if base is None:   # no epoch_start: the first epoch that printed an eval, refused or not
            base = min([*self.evals, *self.refused], default=0)
        state = StateRecord(index=0, test_n=self.eval_n)
        for num, acc in self.evals.items():
            state.epochs.append(self._epoch_record(num, num - base, acc))
        curve = self.done_curve()
        state.intra_epoch = [(s, p[0], p[1], p[2]) for s, p in even_sample(curve, MAX_CURVE_POINTS)]
        if curve and curve[0][0] == 0:
            state.first_batch_loss, state.first_batch_accuracy = curve[0][1][1], curve[0][1][2]
        if self.eval_n:
            state.extra["test_correct_from"] = "eval_accuracy x eval_samples, rounded"
        state.extra["epoch_num_of_epoch_0"] = base
        return state

    def done_curve(self) -> list:
        """The first-epoch points, by step, that entered: each with its loss and accuracy, or once
        the log moved past it (a later step, or the epoch's eval), so a cut between its two events
        never shows half."""
        last, evaluated = max(self.curve, default=None), self.first_epoch in self.evals
        return sorted((s, p) for s, p in self.curve.items()
                      if p[1] is not None and (p[2] is not None or s < last or evaluated))

    def _epoch_record(self, num: int, index: int, acc: float) -> EpochRecord:
        correct = round(acc * self.eval_n / 100) if self.eval_n else None
        return EpochRecord(epoch=index, train_loss=self.losses.get(num, math.nan),
                           train_accuracy=math.nan, test_accuracy=acc, test_correct=correct,
                           test_n=self.eval_n if correct is not None else None)

    def dropped(self) -> list:
        return [f"epoch_num {num}: not entered ({why})" for num, why in self.refused.items()]


def parse(lines: LogLines) -> dict:
    run, tally = _Run(), Tally()
    for number, text in lines:
        event, run.number = _event(text), number
        if isinstance(event, str):
            tally.refuse(number, text, event)
        elif event is not None and run.event(*event):
            tally.hit()
        elif run.problem:
            tally.refuse(number, text, run.problem)
        else:
            tally.miss(number, text)
    state = run.state()
    dropped = Listed()
    for entry in run.dropped():
        dropped.add(entry)
    return {"args": run.args, "states": [state] if state else [], "tally": tally,
            "complete": run.stopped == "success", "dropped": dropped.as_list(),
            "notes": {"run_stop_status": run.stopped, "arguments_cut": run.cut.as_list(),
                      "intra_epoch_curve_cut": _curve_note(run)}}


def _curve_note(run: _Run) -> list:
    points = len(run.done_curve())
    if points <= MAX_CURVE_POINTS:
        return []
    return [f"state 0: {MAX_CURVE_POINTS:,} of the {points:,} points of the curve inside epoch 0 "
            f"kept, evenly spaced (the first and the last among them)"]


def _event(text: str) -> Union[tuple, str, None]:
    """(key, value, metadata) of an MLLOG line; None when it holds none; a string saying why
    when it is too long to read."""
    at = text.find(PREFIX)
    if at < 0:
        return None
    if len(text) - at > MAX_EVENT_CHARS:
        return (f"an MLLOG event of {len(text) - at:,} characters, over the {MAX_EVENT_CHARS:,} "
                f"an event is read up to; not read")
    try:
        data = json.loads(text[at + len(PREFIX):])
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("key"), str):
        return None
    meta = data.get("metadata")
    return data["key"], data.get("value"), meta if isinstance(meta, dict) else {}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _percent(value: float) -> float:
    """MLPerf logs accuracies as fractions; a value above 1 was already in percent."""
    return round(100.0 * value, 9) if value <= 1.0 else float(value)
