"""The PyTorch ImageNet example's log family, printed by a great many research repositories.

Training batches ``Epoch: [e][i/n]\\tTime ...\\tLoss a (avg)\\tPrec@1 b (avg)\\tPrec@5 ...`` (the
newer example prints ``Acc@1`` and pads ``[   0/5005]``), evaluation batches ``Test: [i/n] ...``,
the end of an evaluation `` * Prec@1 X Prec@5 Y`` (or `` *   Acc@1 X Acc@5 Y``): the test
accuracy of the epoch whose training it follows, and a running ``best SA: X`` (or ``best
prec1: X``, ``Best acc: X``). An argparse ``Namespace(...)`` line gives the run arguments, and a
bare number (or ``lr: X``) line the learning rate of the next epoch.

There is no state header: the log is state 0. An epoch enters the record once an evaluation
follows its training; when one epoch prints more than one evaluation (validation, then test),
the last is its test accuracy and the earlier ones are listed in ``extra["validation_accuracy"]``.
The first training batch of epoch 0 gives the first-batch loss and accuracy; the running means of
epoch 0 give the curve inside it.
"""
from __future__ import annotations

import math
import re
from typing import Callable, Optional

from harness.logs.bounds import (MAX_EPOCHS, NUMBER, EvenCurve, Listed, curve_cut,
                                 percent_problem)
from harness.logs.namespace import read_namespace
from harness.logs.research import dispatch, strip_prefix
from harness.logs.source import LogLines, Tally
from harness.record import EpochRecord, StateRecord

NAME = "imagenet-example"
DESCRIPTION = ("the PyTorch ImageNet example's 'Epoch: [e][i/n] ... Prec@1/Acc@1' and "
               "' * Prec@1 X' lines")
_INT = r"(\d{1,9})"
_TOP1 = r"(?:Prec|Acc)@1"
# Each field is a bounded name, a number and an optional "(average)": linear in the line.
_AVG = rf"\s{{1,8}}{NUMBER}(?:\s{{0,8}}\(\s{{0,8}}{NUMBER}\s{{0,8}}\))?"
_BATCH = re.compile(rf"^\s*Epoch:\s{{0,8}}\[\s{{0,8}}{_INT}\]\s{{0,8}}\[\s{{0,8}}{_INT}\s{{0,8}}/\s{{0,8}}{_INT}\]")
_LOSS = re.compile(rf"\bLoss{_AVG}")
_ACC = re.compile(rf"\b{_TOP1}{_AVG}")
_TEST = re.compile(r"^\s*Test:\s{0,8}\[\s{0,8}\d{1,9}\s{0,8}/\s{0,8}\d{1,9}\]")
_SUMMARY = re.compile(rf"^\s*\*\s{{0,8}}{_TOP1}\s{{1,8}}{NUMBER}")
_BEST = re.compile(rf"^\s*(?:best SA|best prec1|best acc(?:@1)?)\s{{0,4}}[:=]\s{{0,4}}{NUMBER}\s*%?\s*$",
                   re.I)
_NAMESPACE = re.compile(r"^\s*Namespace\(")
_LR = re.compile(rf"^\s*(?:lr\s{{0,4}}[:=]\s{{0,4}})?{NUMBER}\s*$", re.I)
MARKERS = (_ACC, _SUMMARY, _BEST)   # what this family prints and the research format does not


def sniff(lines: LogLines) -> int:
    """Lines that carry a ``Prec@1``/``Acc@1`` value or a ``best SA:`` (0: not this format);
    with them, its Namespace and batch lines count too (so it outranks the research format,
    whose batch lines look alike)."""
    own = other = 0
    for _, text in lines:
        text = strip_prefix(text)
        if _SUMMARY.search(text) or _BEST.search(text) or _ACC.search(text):
            own += 1
        elif _NAMESPACE.search(text) or _BATCH.search(text):
            other += 1
    return own + other if own else 0


class _Parser:
    def __init__(self) -> None:
        self.args: dict = {}
        self.state: Optional[StateRecord] = None
        self.curve = EvenCurve()
        self.cut, self.dropped = Listed(), Listed()
        self.epoch: Optional[int] = None        # the epoch whose batches were printed last
        self.loss = math.nan                    # its running loss, last printed
        self.train_acc = math.nan               # its running top-1, last printed
        self.lr: Optional[float] = None         # printed before the epoch's batches
        self.pending_lr: Optional[float] = None  # printed; its epoch's batches not yet
        self.evals: list = []                   # the epoch's evaluations, in order
        self.problem: Optional[str] = None
        self.best: list = []
        self.handlers: list[tuple[re.Pattern, Callable]] = [
            (_NAMESPACE, self.namespace), (_BATCH, self.batch), (_TEST, lambda m: True),
            (_SUMMARY, self.summary), (_BEST, self.best_line), (_LR, self.lr_line)]

    def line(self, number: int, text: str) -> bool:
        self.problem = None
        return dispatch(self.handlers, text)

    def namespace(self, m: re.Match) -> bool:
        read_namespace(m.string, self.args, self.cut, m.end())
        return True

    def _state(self) -> StateRecord:
        if self.state is None:
            self.state = StateRecord(index=0)
        return self.state

    def batch(self, m: re.Match) -> bool:
        e, i, n = int(m.group(1)), int(m.group(2)), int(m.group(3))
        loss, acc = _LOSS.search(m.string, m.end()), _ACC.search(m.string, m.end())
        if loss is None:
            return False
        if e != self.epoch:
            self.close()
            self.epoch, self.lr, self.pending_lr = e, self.pending_lr, None
        value, mean = _float(loss.group(1)), _float(loss.group(2))
        top1, top1_mean = (_float(acc.group(1)), _float(acc.group(2))) if acc else (None, None)
        for v in (top1, top1_mean):
            problem = None if v is None else percent_problem(v, "batch accuracy")
            if problem:
                self.problem = problem
                return False
        running = mean if mean is not None else value
        self.loss = running
        self.train_acc = top1_mean if top1_mean is not None else (top1 if top1 is not None else math.nan)
        state = self._state()
        if not state.epochs and not self.evals:   # the first epoch printed
            if i == 0 and state.first_batch_loss is None:
                state.first_batch_loss, state.first_batch_accuracy = value, top1
            self.curve.add((i, n, running, self.train_acc))
        return True

    def summary(self, m: re.Match) -> bool:
        value = float(m.group(1))
        problem = percent_problem(value, "test accuracy")
        if problem:
            self.problem = problem
            return False
        self._state()
        self.evals.append(value)
        return True

    def best_line(self, m: re.Match) -> bool:
        value = float(m.group(1))
        problem = percent_problem(value, "best SA")
        if problem:
            self.problem = problem
            return False
        self.best.append(value)
        return True

    def lr_line(self, m: re.Match) -> bool:
        value = float(m.group(1))
        if not math.isfinite(value) or value < 0:
            return False
        self.close()   # an epoch's evaluations end where the next epoch's lr is printed
        self.pending_lr = value
        return True

    def close(self) -> None:
        """Enter the epoch whose training and evaluations were printed."""
        if not self.evals:
            return
        state, evals = self._state(), self.evals
        self.evals = []
        if self.epoch is None:   # an evaluation before any training (of the init)
            state.extra["evaluated_before_training"] = evals[-1]
            return
        index = self.epoch
        if len(state.epochs) >= MAX_EPOCHS:
            self.dropped.add(f"state 0 epoch {index}: over the {MAX_EPOCHS:,} epochs a state may hold")
            return
        if any(e.epoch == index for e in state.epochs):
            self.dropped.add(f"state 0 epoch {index}: printed again; the later evaluation replaces "
                             f"the earlier (a resumed run)")
            state.epochs = [e for e in state.epochs if e.epoch != index]
        state.epochs.append(EpochRecord(epoch=index, train_loss=self.loss, train_accuracy=self.train_acc,
                                        test_accuracy=evals[-1], lr=self.lr))
        for value in evals[:-1]:
            state.extra.setdefault("validation_accuracy", []).append([index, value])
        self.loss = self.train_acc = math.nan
        self.lr = None

    def finish(self) -> list:
        self.close()
        if self.state is None:
            return []
        self.state.intra_epoch = self.curve.points()
        if self.best:
            self.state.extra["best_sa_logged"] = self.best[-1]
        return [self.state]


def parse(lines: LogLines) -> dict:
    """The parsed facts of an ImageNet-example log: arguments, state 0, tally and notes."""
    parser = _Parser()
    tally = Tally.of(parser, lines)
    states = parser.finish()
    planned = parser.args.get("epochs")
    complete = (isinstance(planned, int) and not isinstance(planned, bool) and bool(states)
                and len(states[0].epochs) >= planned)
    return {"args": parser.args, "states": states, "tally": tally, "complete": complete,
            "dropped": parser.dropped.as_list(),
            "notes": {"arguments_cut": parser.cut.as_list(),
                      "intra_epoch_curve_cut": [curve_cut("state 0", parser.curve)] if parser.curve.cut else []}}


def _float(text: Optional[str]) -> Optional[float]:
    return None if text is None else float(text)
