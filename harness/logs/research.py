"""The research group's log format (main_imp_fillback.py).

A ``Namespace(...)`` line of arguments; per state a ``pruning state N`` header and a
``* remain weight = R %`` line; per epoch a bare learning-rate line, ``Epoch: [e][i/n]\\tLoss a (avg)
\\tAccuracy b (avg)`` lines, ``train_accuracy``, then ``valid_accuracy`` twice (validation, then
test); per state ``* best SA=`` and ``State N completed! ... (S seconds)``. An epoch enters the
record only once its test accuracy is printed; a state only once its header is.

Pruning logs (the ViT code path) print a sparsity report ending in ``Remaining weights: X%`` at
each state's start and after each pruning step: every such line is kept with its line number in
the state's ``extra["remaining_weights"]`` (``after_summary``: printed after the state's ``* best
SA=``, i.e. by the pruning step that makes the next state), and the first one of a state sets its
sparsity. ``Layer: NAME`` followed by ``Keeping k/H heads`` gives each attention layer's head
count (``notes["heads"]``); ``notes["best_sa_lines"]`` holds the line of each state's
``* best SA=``. The validation pass printed just before ``* best SA=`` is the state's
``final_validation``, not an epoch.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable, Optional

from harness.logs.bounds import (MAX_EPOCHS, MAX_LISTED, MAX_STATES, NUMBER, EvenCurve, Listed, curve_cut,
                                 percent_problem)
from harness.logs.namespace import read_namespace
from harness.logs.source import LogLines, Tally
from harness.record import EpochRecord, StateRecord

NAME = "research"
DESCRIPTION = "the research group's main_imp_fillback.py log"
# Every pattern runs in time linear in the line: numbers have bounded digits (bounds.NUMBER), no
# two quantifiers compete for the same characters, and no unanchored pattern holds an unbounded
# ``.*`` followed by more to match (the seconds of "completed!" are searched apart).
_NUM = NUMBER
_INT = r"([0-9]{1,9})"   # ASCII digits: int() would read "١" as 1

_NAMESPACE = re.compile(r"^\s*Namespace\(")
_STATE = re.compile(rf"^\s*pruning state\s+{_INT}\s*$")
_REMAIN = re.compile(rf"^\s*\*\s*remain weight\s*=\s*{_NUM}\s*%")
_LR = re.compile(rf"^\s*{_NUM}\s*$")
_EPOCH = re.compile(rf"Epoch:\s*\[{_INT}\]\s*\[{_INT}/{_INT}\]\s+Loss\s+{_NUM}(?:\s*\({_NUM}\))?"
                    rf"(?:\s+Acc(?:uracy)?\s+{_NUM}%?(?:\s*\({_NUM}%?\))?)?")
_TRAIN = re.compile(rf"^\s*train_accuracy\s+{_NUM}\s*$")
_VALID = re.compile(rf"^\s*valid_accuracy\s+{_NUM}\s*$")
_BEST = re.compile(rf"^\s*\*\s*best SA\s*=\s*{_NUM}\s*$")
_SAVED = re.compile(rf"State {_INT} checkpoint saved")
_DONE = re.compile(rf"State {_INT} completed!")
_SECONDS = re.compile(rf"\({_NUM} seconds\)")
_REMAINING = re.compile(rf"^\s*Remaining weights:\s*{_NUM}\s*%")
_LAYER = re.compile(r"^\s*Layer:\s*([\w.]{1,200})\s*$")
_HEADS = re.compile(rf"^\s*Keeping\s+{_INT}/{_INT}\s+heads:")
_INFO = re.compile(r"^[\s*=#\-]+$|^#+ .* #+$|included for (prune and )?rewind:|"
                   r"^start (un)?structured pruning|^执行.*算法$")
# the ViT pruning code's reports: per-layer sparsity rows, test batches, pruning steps
_VIT_INFO = re.compile(r"^\s*[\w.]{1,200}\s+\| Sparsity:|^\s*Test: \[\d{1,9}/\d{1,9}\]|"
                       r"^\s*\[ViT[\w +-]{0,60}\]|^\s*- (Adding to prune|Removing prune from|"
                       r"Applied mask to):|^\s*(Total zeros|Overall sparsity|Original sparsity|"
                       r"New sparsity):|^\s*Keeping \d{1,9}/\d{1,9} neurons|^\s*Also updated|"
                       r"^\s*pruning ViT layer with custom mask:|State \d{1,9} best checkpoint saved|"
                       r"^\s*Keeping \d{1,9}/\d{1,9} (heads|neurons) globally")
# the rest of what main_imp_fillback.py's main() prints and no verdict reads: the model it
# builds, the head/MLP selection's report (vit_pruning_utils_head_mlp.py) and the RSST
# regulariser's layer registration
_GROUP_INFO = re.compile(r"^build model: |^NormalizeByChannelMeanStd\(|^odict_keys\(\[|"
                         r"^\s*[─━]{8,400}\s*$|^\s*Summary:$|"
                         r"^\s*Layer: [\w.]{1,200} - \d{1,9} (heads|neurons), importance range: \[|"
                         r"^\s*- (Head|MLP)剪枝率: |^\s*Mode: (RSST|Refill) \(|"
                         r"^\s*Part \d{1,3}: (Attention Head|MLP Neuron) Pruning|"
                         r"^\s*(Criteria|Head Prune Ratio|MLP Prune Ratio|Sorting Mode|"
                         r"Total heads collected|Total neurons collected|Total masks generated|"
                         r"Attention layers|MLP layers): |^\s*Register layer index and kernel shape:$|"
                         r"^\s*\[\s{0,8}\d{1,9}\]\s{1,40}[\w.]{1,200} -- kernel_shape: ")

MARKERS = (_NAMESPACE, _STATE, _EPOCH, _VALID, _BEST)
# What Python's logging (or a launcher) writes before a message: "[2024-01-02 10:11:12,345] name
# INFO: ", "2024-01-02 10:11:12 - INFO - ", "0: ". Bounded pieces, each ending where its
# characters end: linear in the line.
_LOG_PREFIX = re.compile(
    r"^(?:\d{1,4}:\s)?\[?\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?\]?"
    r"(?:\s{1,4}-)?(?:\s{1,4}[\w.\[\]<>-]{1,100})?(?:\s{1,4}-)?"
    r"(?:\s{1,4}(?:DEBUG|INFO|WARNING|ERROR|CRITICAL))?\s{0,4}[:\-|]?\s{0,4}")


def strip_prefix(text: str) -> str:
    """``text`` without a logging prefix (timestamp, logger name, level), when it has one."""
    m = _LOG_PREFIX.match(text)
    return text[m.end():] if m and m.end() else text


def dispatch(handlers: list, text: str) -> bool:
    """Hand the line (its logging prefix stripped) to the first handler whose pattern it matches;
    whether it was understood (a handler returning False refuses it)."""
    text = strip_prefix(text)
    for pattern, handle in handlers:
        match = pattern.search(text)
        if match:
            return handle(match) is not False
    return False


def sniff(lines: LogLines) -> int:
    """How many lines look like this format (detection picks the format with most)."""
    return sum(1 for _, text in lines if any(m.search(strip_prefix(text)) for m in MARKERS))


@dataclass
class _Epoch:
    index: Optional[int] = None
    lr: Optional[float] = None
    loss: float = math.nan
    train_accuracy: float = math.nan
    valid: list = field(default_factory=list)
    refused: Optional[str] = None   # why a value it printed is impossible: it is not entered

    @property
    def started(self) -> bool:
        return (self.index is not None or not math.isnan(self.train_accuracy) or bool(self.valid)
                or self.refused is not None)


class _Parser:
    def __init__(self) -> None:
        self.args: dict = {}
        self.states: dict[int, StateRecord] = {}   # by index, in the order their headers last came
        self.curves: dict[int, EvenCurve] = {}     # the epoch-0 curve of each state
        self.state: Optional[StateRecord] = None
        self.epoch = _Epoch()
        self.pending_lr: Optional[float] = None
        self.pending_remain: Optional[float] = None
        self.dropped, self.cut = Listed(), Listed()
        self.number, self.problem = 0, None
        self.closed = 0   # epochs of the state that printed their test accuracy, refused or not
        self.handlers: list[tuple[re.Pattern, Callable]] = [
            (_NAMESPACE, self.namespace), (_STATE, self.new_state), (_REMAIN, self.remain),
            (_EPOCH, self.batch), (_TRAIN, self.train), (_VALID, self.valid), (_BEST, self.best),
            (_SAVED, self.saved), (_DONE, self.done), (_LR, self.lr),
            (_REMAINING, self.remaining), (_LAYER, self.layer), (_HEADS, self.heads),
            (_INFO, lambda m: True), (_VIT_INFO, lambda m: True),
            (_GROUP_INFO, lambda m: True)]
        self.layer_name: Optional[str] = None
        self.head_counts: dict = {}
        self.best_lines: dict = {}   # state -> the line of its "* best SA="

    def line(self, number: int, text: str) -> bool:
        """Whether the line was understood; ``problem`` says why a value in it was refused."""
        self.number, self.problem = number, None
        return dispatch(self.handlers, text)

    def refuse(self, why: str) -> bool:
        self.problem = why
        return False

    # --- arguments and states ------------------------------------------------------------
    def namespace(self, m: re.Match) -> bool:
        read_namespace(m.string, self.args, self.cut, m.end())
        return True

    def new_state(self, m: re.Match) -> bool:
        self.close_partial("a new state began")
        index = int(m.group(1))
        if index not in self.states and len(self.states) >= MAX_STATES:
            self.state = None   # its epochs are not read either
            return self.refuse(f"more than {MAX_STATES} pruning states: state {index} not read")
        self.states.pop(index, None)   # a restarted state replaces the earlier one
        self.state = self.states[index] = StateRecord(index=index)
        self.curves[index], self.closed = EvenCurve(), 0
        if self.pending_remain is not None:
            self._set_remain(self.pending_remain)
            self.pending_remain = None
        return True

    def _percent(self, m: re.Match, what: str) -> Optional[float]:
        """The matched percentage, or None when it is impossible (the line is refused)."""
        value = float(m.group(1))
        problem = percent_problem(value, what)
        if problem:
            self.refuse(problem)
            return None
        return value

    def remain(self, m: re.Match) -> bool:
        value = self._percent(m, "remaining weight")
        if value is None:
            return False            # refused: the line and why are listed
        if self.state is not None and not self.state.epochs and not self.epoch.started:
            self._set_remain(value)
        else:
            self.pending_remain = value  # printed after pruning, before the next state's header
        return True

    def remaining(self, m: re.Match) -> bool:
        """A sparsity report's ``Remaining weights: X%``, kept with its line number."""
        value = self._percent(m, "remaining weights")
        if value is None:           # said on the state too: its log_consistency fails on it
            if self.state is not None:
                refused = self.state.extra.setdefault("remaining_refused", [])
                if len(refused) < MAX_LISTED:
                    refused.append({"line": self.number, "why": self.problem,
                                    "after_summary": "best_sa_logged" in self.state.extra})
            return False
        if self.state is None:
            return False
        state = self.state
        at_start = not state.epochs and not self.epoch.started and "best_sa_logged" not in state.extra
        listed = state.extra.setdefault("remaining_weights", [])
        if len(listed) < MAX_EPOCHS:
            listed.append({"line": self.number, "remaining": value, "at_start": at_start,
                           "after_summary": "best_sa_logged" in state.extra})
        if at_start and not any(r["at_start"] for r in listed[:-1]):
            self._set_remain(value)
        return True

    def layer(self, m: re.Match) -> bool:
        self.layer_name = m.group(1)
        return True

    def heads(self, m: re.Match) -> bool:
        if self.layer_name is None or len(self.head_counts) >= MAX_STATES * 64:
            return False
        self.head_counts[self.layer_name.removesuffix(".qkv")] = int(m.group(2))
        self.layer_name = None
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
        problem = _first_problem(acc, acc_avg)
        if problem:
            return self._refuse_epoch(problem)
        running_loss = loss_avg if loss_avg is not None else loss
        self.epoch.loss = running_loss
        if e == 0 and not self.state.epochs and not self.epoch.refused:
            if i == 0 and self.state.first_batch_loss is None:
                self.state.first_batch_loss, self.state.first_batch_accuracy = loss, acc
            self.curves[self.state.index].add((i, n, running_loss, acc_avg if acc_avg is not None else acc))
        return True

    def train(self, m: re.Match) -> bool:
        if self.state is None:
            return False
        self._open(None)
        value = float(m.group(1))
        problem = percent_problem(value, "training accuracy")
        if problem:
            return self._refuse_epoch(problem)
        self.epoch.train_accuracy = value
        return True

    def valid(self, m: re.Match) -> bool:
        if self.state is None:
            return False
        self._open(None)
        value = float(m.group(1))
        problem = percent_problem(value, "validation accuracy" if not self.epoch.valid else "test accuracy")
        self.epoch.valid.append(None if problem else value)
        if problem:
            self._refuse_epoch(problem)
        if len(self.epoch.valid) == 2:  # validation, then test: the epoch is complete
            self.close()
        return problem is None

    def _refuse_epoch(self, why: str) -> bool:
        """The epoch is not entered; when it is the state's epoch 0, nor is its curve."""
        if self.epoch.index in (0, None) and not self.state.epochs and not self.epoch.refused:
            self.curves[self.state.index] = EvenCurve()
            self.state.first_batch_loss = self.state.first_batch_accuracy = None
        self.epoch.refused = self.epoch.refused or f"line {self.number}: {why}"
        return self.refuse(why)

    def _open(self, index: Optional[int]) -> None:
        if not self.epoch.started:
            self.epoch = _Epoch(index=index, lr=self.pending_lr)
            self.pending_lr = None
        elif self.epoch.index is None:
            self.epoch.index = index

    def close(self) -> None:
        ep, state = self.epoch, self.state
        index = ep.index if ep.index is not None else self.closed   # a refused epoch counts too
        self.epoch, self.closed = _Epoch(), self.closed + 1
        if ep.refused or len(state.epochs) >= MAX_EPOCHS:
            why = ep.refused or f"over the {MAX_EPOCHS:,} epochs a state may hold"
            self.dropped.add(f"state {state.index} epoch {index}: not entered ({why})")
            return
        state.epochs.append(EpochRecord(epoch=index, train_loss=ep.loss,
                                        train_accuracy=ep.train_accuracy,
                                        test_accuracy=ep.valid[1], lr=ep.lr,
                                        val_accuracy=ep.valid[0]))
        state.extra.setdefault("validation_accuracy", []).append([index, ep.valid[0]])

    def close_partial(self, why: str) -> None:
        if self.epoch.started and self.state is not None:
            refused = self.epoch.refused
            reason = f"not entered ({refused})" if refused else f"no test accuracy printed before {why}"
            self.dropped.add(f"state {self.state.index} epoch {self.epoch.index}: {reason}")
        self.epoch = _Epoch()

    # --- state summaries ------------------------------------------------------------------
    def best(self, m: re.Match) -> bool:
        if self.state is None:
            return False
        ep = self.epoch
        if ep.index is None and len(ep.valid) == 1 and math.isnan(ep.train_accuracy) and not ep.refused:
            self.state.extra["final_validation"] = ep.valid[0]   # the pass before the summary
            self.epoch = _Epoch()
        self.close_partial("the state's summary")
        value = float(m.group(1))
        problem = percent_problem(value, "best SA")
        if problem:
            return self.refuse(problem)
        self.state.extra["best_sa_logged"] = value
        self.best_lines[self.state.index] = self.number
        return True

    def saved(self, m: re.Match) -> bool:
        return self._summary(int(m.group(1)), "checkpoint_saved", True)

    def done(self, m: re.Match) -> bool:
        seconds = None
        for seconds in _SECONDS.finditer(m.string, m.end()):
            pass   # the last "(S seconds)" after "completed!"
        if seconds is None or not self._summary(int(m.group(1)), "completed", True):
            return False
        self.state.seconds = float(seconds.group(1))
        return True

    def _summary(self, index: int, key: str, value) -> bool:
        if self.state is None or self.state.index != index:
            return False
        self.state.extra[key] = value
        return True

    def finish(self) -> list[StateRecord]:
        self.close_partial("the log ended")
        for index, state in self.states.items():
            state.intra_epoch = self.curves[index].points()
        return list(self.states.values())


def parse(lines: LogLines) -> dict:
    """The parsed facts of a research-format log: arguments, states, tally and notes."""
    parser = _Parser()
    tally = Tally.of(parser, lines)
    states = parser.finish()
    return {"args": parser.args, "states": states, "tally": tally,
            "complete": _complete(parser.args, states), "dropped": parser.dropped.as_list(),
            "notes": {"arguments_cut": parser.cut.as_list(),
                      "intra_epoch_curve_cut": [curve_cut(f"state {s.index}", parser.curves[s.index])
                                                for s in states if parser.curves[s.index].cut],
                      **({"heads": dict(parser.head_counts)} if parser.head_counts else {}),
                      **({"best_sa_lines": sorted(parser.best_lines.items())}
                         if parser.best_lines else {})}}


def _complete(args: dict, states: list) -> bool:
    done = [s.index for s in states if s.extra.get("completed")]
    planned = args.get("pruning_times")
    if isinstance(planned, int) and not isinstance(planned, bool) and planned > 0:
        return len(done) == planned and sorted(done) == list(range(planned))
    return bool(states) and bool(states[-1].extra.get("completed"))


def _first_problem(*accuracies: Optional[float]) -> Optional[str]:
    for value in accuracies:
        problem = None if value is None else percent_problem(value, "batch accuracy")
        if problem:
            return problem
    return None


def _float(text: Optional[str]) -> Optional[float]:
    return None if text is None else float(text)
