"""A log format declared as named regular expressions, so a lab's own log is read without code.

The names and what each reads are :data:`harness.logsyntax.NAMES` (the one list the option help,
``harness log --help`` and docs/logs.md show). Each pattern is searched in every line; group 1, or
the named groups, carry the values. An epoch enters the record when its test accuracy is printed.

First batch: the loss (``loss`` pattern) printed on the first line a ``step`` pattern matches in a
state, before the state's first evaluation, is the state's first-batch loss (the evidence the
pretrained-start verdict quotes beside ln(classes)); a ``step`` pattern's group 1 (or
``(?P<step>...)``), when it has one, must read 0 or 1 there (a later batch is no first batch).

Phases: without a ``state`` pattern, an epoch counter that goes back to (or below) the first
epoch its state printed begins a new state (a fine-tuning phase after a regularizing one, each
counting from 0), and the record's ``notes["phases"]`` says where; a counter that goes back less
far (a resumed run) replaces the earlier evaluations, and says so.

Accuracy scale (``accuracy_scale``): ``fraction`` multiplies every printed accuracy by 100,
``percent`` keeps it, ``auto`` (the default) multiplies when every accuracy the log prints is at
most 1. What was applied, and why, is ``notes["accuracy_scale"]`` and each state's
``extra["accuracy_scale"]``. Counts (``test_correct_total``) are never scaled.

Patterns run on lines already bounded (see :mod:`harness.logs.bounds`), and a pattern that nests
one repetition inside another (``(a+)+``, ``(.*)*``), whose time can grow exponentially with the
line, is refused when declared.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Optional

from harness.logs.bounds import (MAX_EPOCHS, MAX_EVENT_CHARS, MAX_STATES, MAX_VALUE_CHARS, Listed,
                                 add_argument, clip, percent_problem, read_count)
from harness.logs.namespace import literal, read_namespace, read_object
from harness.logs.source import LogError, LogLines, Tally
from harness.logsyntax import PATTERNS, SCALES, listed
from harness.record import EpochRecord, StateRecord
from harness.regex import PatternError, compile_bounded

NAME = "declared"
DESCRIPTION = "a format declared as named regular expressions (epoch, test_accuracy, ...)"
KEYS = tuple(PATTERNS)
_GROUPS = {"test_correct_total": 2, "argument": 2, "state": 0, "arguments": 0}   # else 1


@dataclass(frozen=True)
class LogPatterns:
    """A declared format: ``patterns`` maps names in KEYS to compiled expressions; ``source``
    says where it was declared (an ini file, ``--pattern``, a built-in format)."""

    patterns: dict = field(default_factory=dict)
    epoch_base: Optional[int] = None
    name: str = NAME
    scale: str = "auto"
    source: str = "the declared log format"

    @classmethod
    def from_mapping(cls, raw: dict, source: str = "the declared log format",
                     name: str = NAME) -> "LogPatterns":
        """Validated patterns; a LogError names the entry, what it must be and what it was."""
        compiled, base, scale = {}, None, "auto"
        for key, text in raw.items():
            if key == "epoch_base":
                if str(text).strip() not in ("0", "1"):
                    raise LogError(f"{source}: epoch_base must be 0 or 1, got {text!r}")
                base = int(str(text).strip())
            elif key == "accuracy_scale":
                scale = str(text).strip().lower()
                if scale not in SCALES:
                    raise LogError(f"{source}: accuracy_scale must be one of {', '.join(SCALES)}, "
                                   f"got {text!r}")
            elif key not in KEYS:
                raise LogError(f"{source}: unknown pattern name {key!r}; use {listed()}")
            else:
                compiled[key] = _compile(key, str(text), source)
        if "test_accuracy" not in compiled and "test_correct_total" not in compiled:
            raise LogError(f"{source}: declare test_accuracy or test_correct_total (what an "
                           f"evaluation prints); got only {', '.join(compiled) or 'nothing'}")
        return cls(compiled, base, name, scale, source)

    @classmethod
    def from_lines(cls, lines, source: str = "the declared log format") -> "LogPatterns":
        """``name: regex`` (or ``name=regex``) lines, as an ini file or ``--pattern`` gives them."""
        raw = {}
        for line in lines:
            line = str(line).strip()
            if not line:
                continue
            m = re.match(r"(\w{1,40})\s*[:=]\s?(.*)$", line)
            if not m:
                raise LogError(f"{source}: {line[:80]!r} is not 'name: regex'")
            raw[m[1]] = m[2]
        return cls.from_mapping(raw, source)

    def signature(self) -> dict:
        """What reads a log this way, as plain data (stored with a record, compared on reuse)."""
        return {"name": self.name, "patterns": {k: p.pattern for k, p in self.patterns.items()},
                "epoch_base": self.epoch_base, "accuracy_scale": self.scale}


def _compile(key: str, text: str, source: str) -> re.Pattern:
    try:
        pattern = compile_bounded(text, f"pattern {key}")
    except PatternError as exc:
        raise LogError(f"{source}: {exc}") from None
    needs = _GROUPS.get(key, 1)
    if pattern.groups < needs:
        what = "the two values it reads" if needs == 2 else "the value it reads"
        raise LogError(f"{source}: pattern {key} {text!r} needs a group around {what}")
    return pattern




def sniff(lines: LogLines, patterns: LogPatterns) -> int:
    evals = [p for k, p in patterns.patterns.items() if k in ("test_accuracy", "test_correct_total")]
    return sum(1 for _, text in lines if any(p.search(text[:MAX_EVENT_CHARS]) for p in evals))


def _group(m: re.Match, name: str, index: int) -> Optional[str]:
    return m.groupdict().get(name) or (m.group(index) if m.re.groups >= index else None)


@dataclass
class _Eval:
    state: int
    epoch: Optional[int]
    accuracy: float
    correct: Optional[int]
    total: Optional[int]
    loss: Optional[float]


class _Reader:
    _ORDER = ("arguments", "state", "epoch", "step", "loss", "test_correct_total", "test_accuracy")

    def __init__(self, patterns: LogPatterns) -> None:
        self.p = patterns.patterns
        self.base = patterns.epoch_base
        self.scale = patterns.scale
        self.args: dict = {}
        self.cut, self.dropped, self.phases = Listed(), Listed(), Listed()
        self.states: dict = {}
        self.state: Optional[StateRecord] = None
        self.epoch: Optional[int] = None
        self.loss: Optional[float] = None
        self.evals: list = []      # _Eval, in the order the log printed them
        self.printed: dict = {}    # state -> [first epoch printed, last epoch printed]
        self.number = 0
        self.step_line: Optional[int] = None   # the line of a state's first step, before its evaluations
        self.first_loss: dict = {}   # state -> the loss printed on that line

    def line(self, number: int, text: str) -> bool:
        text, hit, self.number = text[:MAX_EVENT_CHARS], False, number
        for key in self._ORDER:
            pattern = self.p.get(key)
            m = pattern.search(text) if pattern is not None else None
            if m:
                hit = getattr(self, f"on_{key}")(m) is not False or hit
                if key == "test_correct_total":
                    return True    # the counts are the evaluation; a printed % beside them is not
        if not hit and not self.evals and "argument" in self.p:   # arguments come before training
            m = self.p["argument"].search(text)
            hit = bool(m) and self.on_argument(m)
        return hit

    def on_arguments(self, m: re.Match) -> bool:
        start = m.end() - 1 if m.group(0).endswith("{") else m.end()   # a pattern ending in {
        body = m.string[start:]
        found = (read_object(body) if body.lstrip().startswith("{")
                 else read_namespace(m.string, {}, self.cut, start))
        if not found:
            self.cut.add(f"line {self.number}: an arguments line whose text after the match is "
                         f"neither key=value, ... nor a JSON object ({clip(body, 60)!r}): not read")
            return False
        for key, value in found.items():
            add_argument(self.args, key, value, self.cut)
        return True

    def on_argument(self, m: re.Match) -> bool:
        key, value = _group(m, "key", 1), _group(m, "value", 2)
        if not key or value is None:
            return False
        value = value.strip()
        return add_argument(self.args, key, literal(value) if len(value) <= MAX_VALUE_CHARS else value,
                            self.cut)

    def _count(self, text: Optional[str], what: str) -> Optional[int]:
        """``text`` as a whole number, or None with the refused value said in the record."""
        value, why = read_count(text, what)
        if why:
            self.dropped.add(f"line {self.number}: {why}")
        return value

    def on_state(self, m: re.Match) -> bool:
        index = len(self.states)
        if m.re.groups and (m.group(1) or "").strip().isdigit():   # else a name: the next index
            index = self._count(m.group(1), "state")
            if index is None:
                return False
        if index not in self.states and len(self.states) >= MAX_STATES:
            return False
        self.state = self.states.setdefault(index, StateRecord(index=index))
        self.epoch = None
        return True

    def on_epoch(self, m: re.Match) -> bool:
        value = self._count(_group(m, "epoch", 1), "epoch")
        if value is None:
            self.epoch = None      # the evaluation after it is not the previous epoch's
            return False
        self.epoch = value
        return True

    def _state_index(self) -> int:
        return self.state.index if self.state is not None else 0

    def on_step(self, m: re.Match) -> None:
        """Counted as understood; the state's first step line (index 0 or 1 when the pattern
        reads one) is where its first-batch loss is read."""
        index = self._state_index()
        if index in self.first_loss or any(e.state == index for e in self.evals):
            return
        value = _group(m, "step", 1) if m.re.groups else None
        if value is None or (value.isdigit() and int(value) <= 1):
            self.step_line = self.number
            self.first_loss.setdefault(index, None)

    def on_loss(self, m: re.Match) -> bool:
        try:
            self.loss = float(_group(m, "loss", 1))
        except (TypeError, ValueError):
            return False
        index = self._state_index()
        if self.step_line == self.number and self.first_loss.get(index, 0) is None:
            self.first_loss[index] = self.loss
        return True

    def on_test_correct_total(self, m: re.Match) -> bool:
        correct = self._count(_group(m, "correct", 1), "correct count")
        total = self._count(_group(m, "total", 2), "total count")
        if correct is None or total is None:
            return False
        if total <= 0 or not 0 <= correct <= total:
            return False
        return self._add(100.0 * correct / total, correct, total)

    def on_test_accuracy(self, m: re.Match) -> bool:
        try:
            value = float(_group(m, "accuracy", 1))
        except (TypeError, ValueError):
            return False
        return self._add(value, None, None)

    def _add(self, accuracy: float, correct: Optional[int], total: Optional[int]) -> bool:
        if len(self.evals) >= MAX_EPOCHS * 4:
            return False
        if self.state is None:
            self.state = self.states.setdefault(0, StateRecord(index=0))
        self._new_phase()
        if self.epoch is not None:
            seen = self.printed.setdefault(self.state.index, [self.epoch, self.epoch])
            seen[1] = self.epoch
        self.evals.append(_Eval(self.state.index, self.epoch, accuracy, correct, total, self.loss))
        return True

    def _new_phase(self) -> None:
        """Without a state pattern: an epoch counter back at (or below) the first epoch its state
        printed, after a later one, begins a new state."""
        seen = self.printed.get(self.state.index)
        if ("state" in self.p or self.epoch is None or seen is None
                or not self.epoch <= seen[0] < seen[1] or len(self.states) >= MAX_STATES):
            return
        index = max(self.states) + 1
        self.phases.add(f"state {index} begins at line {self.number}: the epoch counter went back "
                        f"from {seen[1]} to {self.epoch} (a new phase, e.g. fine-tuning after "
                        f"pruning, or a run started again)")
        self.state = self.states[index] = StateRecord(index=index)

    def _scaled(self) -> tuple:
        """(multiply printed accuracies by 100, what was applied and why)."""
        printed = [e.accuracy for e in self.evals if e.correct is None and math.isfinite(e.accuracy)]
        if self.scale == "fraction":
            return True, "fraction: declared (accuracy_scale = fraction); each accuracy x 100"
        if self.scale == "percent":
            return False, "percent: declared (accuracy_scale = percent); read as printed"
        if not printed:
            return False, None
        top = max(printed)
        if top <= 1.0:
            return True, (f"fraction: auto (all {len(printed)} accuracies printed are at most 1, "
                          f"the highest {top:g}); each x 100; declare accuracy_scale = percent "
                          f"if they are percentages")
        return False, f"percent: auto (an accuracy printed is above 1: {top:g}); read as printed"

    def finish(self) -> tuple:
        fraction, how = self._scaled()
        printed = [e.epoch for e in self.evals if e.epoch is not None]
        base = self.base if self.base is not None else (min(printed) if printed and min(printed) in (0, 1) else 0)
        replaced: dict = {}    # state -> epochs whose earlier evaluation a later one replaced
        scaled = {ev.state for ev in self.evals if ev.correct is None}   # printed accuracies
        for ev in self.evals:
            acc = round(ev.accuracy * 100.0, 9) if fraction and ev.correct is None else ev.accuracy
            state = self.states[ev.state]
            index = (ev.epoch - base) if ev.epoch is not None else len(state.epochs)
            problem = percent_problem(acc, "test accuracy")
            if problem or index < 0:
                self.dropped.add(f"state {ev.state} epoch {ev.epoch}: not entered "
                                 f"({problem or f'epoch {ev.epoch} below epoch_base {base}'})")
                continue
            if any(e.epoch == index for e in state.epochs):   # a repeat replaces, and is said
                replaced.setdefault(ev.state, []).append(index)
            state.epochs = [e for e in state.epochs if e.epoch != index]
            state.epochs.append(EpochRecord(epoch=index, train_loss=ev.loss if ev.loss is not None else float("nan"),
                                            train_accuracy=float("nan"), test_accuracy=acc,
                                            test_correct=ev.correct, test_n=ev.total))
        for state_index, epochs in replaced.items():
            self.dropped.add(f"state {state_index}: {len(epochs)} evaluation(s) replaced by a later one "
                             f"of the same epoch (epochs {min(epochs)}-{max(epochs)}): a resumed run, "
                             f"or phases the format does not tell apart (declare a state pattern)")
        for state in self.states.values():
            loss = self.first_loss.get(state.index)
            if loss is not None and math.isfinite(loss):
                state.first_batch_loss = loss
            first_n = state.epochs[0].test_n if state.epochs else None
            if first_n and all(e.test_n == first_n for e in state.epochs):
                state.test_n = state.epochs[0].test_n
            if how is not None and state.index in scaled:
                state.extra["accuracy_scale"] = "fraction" if fraction else "percent"
        return list(self.states.values()), how


def parse(lines: LogLines, patterns: LogPatterns) -> dict:
    reader = _Reader(patterns)
    tally = Tally.of(reader, lines)
    states, scale = reader.finish()
    notes = {"arguments_cut": reader.cut.as_list(), "declared_format": patterns.name,
             "declared_in": patterns.source, "phases": reader.phases.as_list(),
             "declared_patterns": {k: p.pattern for k, p in patterns.patterns.items()}}
    if scale is not None:
        notes["accuracy_scale"] = scale
    return {"args": reader.args, "states": states, "tally": tally, "complete": False,
            "dropped": reader.dropped.as_list(), "notes": notes}


# Formats other people's tools write, declared with the same machinery.
BUILTIN = {
    "pytorch-examples": {
        "epoch": r"Train Epoch:\s{0,8}(\d{1,9})",
        "loss": r"Train Epoch:.{0,80}?Loss:\s{0,8}(\d{1,20}\.\d{1,20})",
        "test_correct_total": r"Test set: Average loss: [-+.\deE]{1,40}, Accuracy: (\d{1,12})/(\d{1,12})",
        "arguments": r"Namespace\(",
    },
    # The accuracy is read on the epoch's own line, within 200 characters of "Epoch N/M" ("Best
    # Acc=" and "Acc: 0.93 => 0.28" lines are no epoch's evaluation); a validation or test loss is
    # not the training loss.
    "epoch-acc": {
        "epoch": r"\bEpoch[\s:\[]{0,4}(\d{1,9})\s{0,4}/\s{0,4}\d{1,9}",
        "loss": r"(?<![Vv]al )(?<![Tt]est )\b(?:train_)?[Ll]oss\s{0,4}[=:]\s{0,4}(\d{1,20}(?:\.\d{1,20})?)",
        "test_accuracy": r"\bEpoch[\s:\[]{0,4}\d{1,9}\s{0,4}/\s{0,4}\d{1,9}\b[^\n]{0,200}?"
                         r"\b(?:val_|test_)?[Aa]cc(?:uracy)?\s{0,4}[=:]\s{0,4}(\d{1,20}(?:\.\d{1,20})?)",
        "arguments": r"Namespace\(|\b(?:args|arguments|config)\s{0,4}[:=]\s{0,4}(?=\{)",
        # "dataset: cifar10" lines (Torch-Pruning prints its arguments so, behind a logging
        # prefix): a lower-case name at the line's start or after a prefix's ": "
        "argument": r"(?:^|:\s{1,4})([a-z_][a-z0-9_]{0,59}):\s{1,4}(\S.{0,300})$",
    },
}


def builtin(name: str) -> LogPatterns:
    return LogPatterns.from_mapping(BUILTIN[name], f"built-in format {name}", name)
