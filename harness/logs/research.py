"""The research group's log format (main_imp_fillback.py).

A ``Namespace(...)`` line of arguments; per state a ``pruning state N`` header and a
``* remain weight = R %`` line; per epoch a bare learning-rate line, ``Epoch: [e][i/n]\\tLoss a (avg)
\\tAccuracy b (avg)`` lines, ``train_accuracy``, then ``valid_accuracy`` twice (validation, then
test); per state ``* best SA=`` and ``State N completed! ... (S seconds)``. An epoch enters the
record only once its test accuracy is printed; a state only once its header is.
"""
from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass, field
from typing import Callable, Optional

from harness.logs.source import LogLines, Tally
from harness.record import EpochRecord, StateRecord

NAME = "research"
DESCRIPTION = "the research group's main_imp_fillback.py log"
_NUM = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d{1,4})?|nan|inf)"
_INT = r"(\d{1,9})"

_NAMESPACE = re.compile(r"^\s*Namespace\((.*?)\)?\s*$")
_STATE = re.compile(rf"^\s*pruning state\s+{_INT}\s*$")
_REMAIN = re.compile(rf"^\s*\*\s*remain weight\s*=\s*{_NUM}\s*%")
_LR = re.compile(rf"^\s*{_NUM}\s*$")
_EPOCH = re.compile(rf"Epoch:\s*\[{_INT}\]\s*\[{_INT}/{_INT}\]\s+Loss\s+{_NUM}(?:\s*\({_NUM}\))?"
                    rf"(?:\s+Acc(?:uracy)?\s+{_NUM}%?(?:\s*\({_NUM}%?\))?)?")
_TRAIN = re.compile(rf"^\s*train_accuracy\s+{_NUM}\s*$")
_VALID = re.compile(rf"^\s*valid_accuracy\s+{_NUM}\s*$")
_BEST = re.compile(rf"^\s*\*\s*best SA\s*=\s*{_NUM}\s*$")
_SAVED = re.compile(rf"State {_INT} checkpoint saved")
_DONE = re.compile(rf"State {_INT} completed!.*\({_NUM} seconds\)")
_INFO = re.compile(r"^[\s*=#\-]+$|^#+ .* #+$|included for (prune and )?rewind:|"
                   r"^start (un)?structured pruning|^执行.*算法$")
_PAIR = re.compile(r"(\w+)=('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^,()]*)")

MARKERS = (re.compile(r"^\s*Namespace\("), _STATE, _EPOCH, _VALID, _BEST)


def sniff(lines: LogLines) -> int:
    """How many lines look like this format (detection picks the format with most)."""
    return sum(1 for _, text in lines if any(m.search(text) for m in MARKERS))


@dataclass
class _Epoch:
    index: Optional[int] = None
    lr: Optional[float] = None
    loss: float = math.nan
    train_accuracy: float = math.nan
    valid: list = field(default_factory=list)

    @property
    def started(self) -> bool:
        return self.index is not None or not math.isnan(self.train_accuracy) or bool(self.valid)


class _Parser:
    def __init__(self) -> None:
        self.args: dict = {}
        self.states: list[StateRecord] = []
        self.state: Optional[StateRecord] = None
        self.epoch = _Epoch()
        self.pending_lr: Optional[float] = None
        self.pending_remain: Optional[float] = None
        self.dropped: list[str] = []
        self.handlers: list[tuple[re.Pattern, Callable]] = [
            (_NAMESPACE, self.namespace), (_STATE, self.new_state), (_REMAIN, self.remain),
            (_EPOCH, self.batch), (_TRAIN, self.train), (_VALID, self.valid), (_BEST, self.best),
            (_SAVED, self.saved), (_DONE, self.done), (_LR, self.lr), (_INFO, lambda m: True)]

    def line(self, text: str) -> bool:
        for pattern, handle in self.handlers:
            match = pattern.search(text)
            if match:
                return handle(match) is not False
        return False

    # --- arguments and states ------------------------------------------------------------
    def namespace(self, m: re.Match) -> bool:
        self.args.update(_arguments(m.group(1)))
        return True

    def new_state(self, m: re.Match) -> bool:
        self.close_partial("a new state began")
        index = int(m.group(1))
        self.states = [s for s in self.states if s.index != index]  # a restarted state replaces
        self.state = StateRecord(index=index)
        self.states.append(self.state)
        if self.pending_remain is not None:
            self._set_remain(self.pending_remain)
            self.pending_remain = None
        return True

    def remain(self, m: re.Match) -> bool:
        value = float(m.group(1))
        if self.state is not None and not self.state.epochs and not self.epoch.started:
            self._set_remain(value)
        else:
            self.pending_remain = value  # printed after pruning, before the next state's header
        return True

    def _set_remain(self, value: float) -> None:
        self.state.extra["remain_weight"] = value
        self.state.sparsity = round(100.0 - value, 6)

    # --- epochs ---------------------------------------------------------------------------
    def lr(self, m: re.Match) -> bool:
        if self.epoch.started:
            self.close_partial("a new epoch began")
        self.pending_lr = float(m.group(1))
        return True

    def batch(self, m: re.Match) -> bool:
        if self.state is None:
            return False
        e, i, n = int(m.group(1)), int(m.group(2)), int(m.group(3))
        loss, loss_avg, acc, acc_avg = (_float(m.group(k)) for k in (4, 5, 6, 7))
        if self.epoch.index is not None and self.epoch.index != e:
            self.close_partial("a new epoch began")
        self._open(e)
        running_loss = loss_avg if loss_avg is not None else loss
        self.epoch.loss = running_loss
        if e == 0 and not self.state.epochs:
            if i == 0 and self.state.first_batch_loss is None:
                self.state.first_batch_loss, self.state.first_batch_accuracy = loss, acc
            self.state.intra_epoch.append((i, n, running_loss, acc_avg if acc_avg is not None else acc))
        return True

    def train(self, m: re.Match) -> bool:
        if self.state is None:
            return False
        self._open(None)
        self.epoch.train_accuracy = float(m.group(1))
        return True

    def valid(self, m: re.Match) -> bool:
        if self.state is None:
            return False
        self._open(None)
        self.epoch.valid.append(float(m.group(1)))
        if len(self.epoch.valid) == 2:  # validation, then test: the epoch is complete
            self.close()
        return True

    def _open(self, index: Optional[int]) -> None:
        if not self.epoch.started:
            self.epoch = _Epoch(index=index, lr=self.pending_lr)
            self.pending_lr = None
        elif self.epoch.index is None:
            self.epoch.index = index

    def close(self) -> None:
        ep, state = self.epoch, self.state
        index = ep.index if ep.index is not None else len(state.epochs)
        state.epochs.append(EpochRecord(epoch=index, train_loss=ep.loss,
                                        train_accuracy=ep.train_accuracy,
                                        test_accuracy=ep.valid[1], lr=ep.lr))
        state.extra.setdefault("validation_accuracy", []).append([index, ep.valid[0]])
        self.epoch = _Epoch()

    def close_partial(self, why: str) -> None:
        if self.epoch.started and self.state is not None:
            self.dropped.append(f"state {self.state.index} epoch {self.epoch.index}: no test "
                                f"accuracy printed before {why}")
        self.epoch = _Epoch()

    # --- state summaries ------------------------------------------------------------------
    def best(self, m: re.Match) -> bool:
        if self.state is None:
            return False
        self.close_partial("the state's summary")
        self.state.extra["best_sa_logged"] = float(m.group(1))
        return True

    def saved(self, m: re.Match) -> bool:
        return self._summary(int(m.group(1)), "checkpoint_saved", True)

    def done(self, m: re.Match) -> bool:
        if not self._summary(int(m.group(1)), "completed", True):
            return False
        self.state.seconds = float(m.group(2))
        return True

    def _summary(self, index: int, key: str, value) -> bool:
        if self.state is None or self.state.index != index:
            return False
        self.state.extra[key] = value
        return True


def parse(lines: LogLines) -> dict:
    """The parsed facts of a research-format log: arguments, states, tally and notes."""
    parser, tally = _Parser(), Tally()
    for number, text in lines:
        if parser.line(text):
            tally.hit()
        else:
            tally.miss(number, text)
    parser.close_partial("the log ended")
    return {"args": parser.args, "states": parser.states, "tally": tally,
            "complete": _complete(parser.args, parser.states), "dropped": parser.dropped}


def _complete(args: dict, states: list) -> bool:
    done = [s.index for s in states if s.extra.get("completed")]
    planned = args.get("pruning_times")
    if isinstance(planned, int) and not isinstance(planned, bool) and planned > 0:
        return sorted(done) == list(range(planned))
    return bool(states) and bool(states[-1].extra.get("completed"))


def _arguments(text: str) -> dict:
    """``a=1, b='x'`` -> {'a': 1, 'b': 'x'} without evaluating code (literals only)."""
    try:
        call = ast.parse(f"f({text})", mode="eval").body
        return {kw.arg: _literal(kw.value) for kw in call.keywords if kw.arg}
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {k: _literal_text(v) for k, v in _PAIR.findall(text)}


def _literal(node: ast.AST):
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        return ast.unparse(node)


def _literal_text(text: str):
    text = text.strip()
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        return text


def _float(text: Optional[str]) -> Optional[float]:
    return None if text is None else float(text)
