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
from typing import Any, Optional

from harness.logs.source import LogLines, Tally
from harness.record import EpochRecord, StateRecord

NAME = "mllog"
DESCRIPTION = "MLPerf ':::MLLOG {json}' lines"
PREFIX = ":::MLLOG"
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
    evals: dict = field(default_factory=dict)      # epoch_num -> accuracy in %
    closed: list = field(default_factory=list)     # epoch_nums in the order they completed
    losses: dict = field(default_factory=dict)     # epoch_num -> last train loss
    curve: dict = field(default_factory=dict)      # step -> [steps, loss, accuracy] of the first epoch

    def epoch(self, meta: dict) -> Optional[int]:
        value = meta.get("epoch_num")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
        return int(value)

    def event(self, key: str, value: Any, meta: dict) -> bool:
        epoch = self.epoch(meta)
        if key in _CONTROL:
            return self.control(key, epoch, meta)
        if key == "eval_accuracy" and epoch is not None and _number(value):
            self.started = True
            self.evals[epoch] = _percent(value)
            self._close(epoch)
            return True
        if key == "eval_samples" and _number(value) and value > 0:
            self.eval_n = int(value)
            return True
        if key in ("train_loss", "train_accuracy") and epoch is not None and _number(value):
            return self.train(key, float(value), epoch, meta)
        if not self.started and (_number(value) or isinstance(value, (str, bool))):
            self.args[key] = value
            return True
        return False

    def control(self, key: str, epoch: Optional[int], meta: dict) -> bool:
        if key == "run_start":
            self.started = True
        elif key == "run_stop":
            self.stopped = str(meta.get("status", "unknown"))
        elif key == "epoch_start" and epoch is not None:
            self.started = True
            if self.first_epoch is None or epoch < self.first_epoch:
                self.first_epoch = epoch
        return True  # epoch_stop, block and eval intervals: an epoch enters with its eval_accuracy

    def train(self, key: str, value: float, epoch: int, meta: dict) -> bool:
        self.started = True
        if self.first_epoch is None:
            self.first_epoch = epoch
        if key == "train_loss":
            self.losses[epoch] = value
        step = meta.get("step")
        if epoch == self.first_epoch and isinstance(step, int) and not isinstance(step, bool):
            steps = meta.get("steps")
            point = self.curve.setdefault(step, [steps if isinstance(steps, int) else None, None, None])
            if key == "train_loss":
                point[1] = value
            else:
                point[2] = _percent(value)
        return True

    def _close(self, epoch: int) -> None:
        if epoch not in self.closed:
            self.closed.append(epoch)

    def state(self) -> Optional[StateRecord]:
        if not self.started:
            return None
        base = self.first_epoch if self.first_epoch is not None else min(self.closed, default=0)
        state = StateRecord(index=0, test_n=self.eval_n)
        for num in self.closed:
            state.epochs.append(self._epoch_record(num, num - base))
        curve = sorted((s, p) for s, p in self.curve.items() if self._point_done(s, p))
        state.intra_epoch = [(s, p[0], p[1], p[2]) for s, p in curve]
        if curve and curve[0][0] == 0:
            state.first_batch_loss, state.first_batch_accuracy = curve[0][1][1], curve[0][1][2]
        if self.eval_n:
            state.extra["test_correct_from"] = "eval_accuracy x eval_samples, rounded"
        state.extra["epoch_num_of_epoch_0"] = base
        return state

    def _point_done(self, step: int, point: list) -> bool:
        """A first-epoch point enters with its loss and accuracy, or once the log moved past it
        (a later step, or the epoch's eval), so a cut between its two events never shows half."""
        if point[1] is None:
            return False
        return point[2] is not None or step < max(self.curve) or self.first_epoch in self.evals

    def _epoch_record(self, num: int, index: int) -> EpochRecord:
        acc = self.evals.get(num)
        correct = round(acc * self.eval_n / 100) if acc is not None and self.eval_n else None
        return EpochRecord(epoch=index, train_loss=self.losses.get(num, math.nan),
                           train_accuracy=math.nan, test_accuracy=acc, test_correct=correct,
                           test_n=self.eval_n if correct is not None else None)


def parse(lines: LogLines) -> dict:
    run, tally = _Run(), Tally()
    for number, text in lines:
        event = _event(text)
        if event is not None and run.event(*event):
            tally.hit()
        else:
            tally.miss(number, text)
    state = run.state()
    return {"args": run.args, "states": [state] if state else [], "tally": tally,
            "complete": run.stopped == "success", "dropped": [],
            "notes": {"run_stop_status": run.stopped}}


def _event(text: str) -> Optional[tuple]:
    at = text.find(PREFIX)
    if at < 0:
        return None
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
