"""A log format declared as named regular expressions, so a lab's own log is read without code.

Names (each a regular expression searched in every line; group 1, or the named groups, carry the
values): ``epoch`` (the epoch number), ``test_accuracy`` (a test accuracy; read as a fraction
when every one the log prints is at most 1), ``test_correct_total`` (groups ``correct`` and
``total``, or 1 and 2: the counts, preferred over a printed percentage), ``loss`` (the training
loss, the last one before an evaluation is the epoch's), ``step`` (a batch inside an epoch, for
the first batch), ``state`` (a pruning state header: group 1 its index) and ``arguments`` (where
a ``key=value, ...`` run-argument list starts: the text after the match is read like argparse's
``Namespace(...)``). An epoch enters the record when its test accuracy is printed. ``epoch_base``
says whether the log numbers epochs from 0 or 1 (default: the first printed epoch, when 0 or 1).

Patterns run on lines already bounded (see :mod:`harness.logs.bounds`), and a pattern that nests
one repetition inside another (``(a+)+``, ``(.*)*``), whose time can grow exponentially with the
line, is refused when declared.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

try:                                    # Python 3.11+
    from re import _parser as _sre     # type: ignore[attr-defined]
except ImportError:                     # pragma: no cover - older Pythons
    import sre_parse as _sre            # type: ignore[no-redef]

from harness.logs.bounds import MAX_EPOCHS, MAX_EVENT_CHARS, MAX_STATES, Listed, percent_problem
from harness.logs.namespace import read_namespace
from harness.logs.source import LogError, LogLines, Tally
from harness.record import EpochRecord, StateRecord

NAME = "declared"
DESCRIPTION = "a format declared as named regular expressions (epoch, test_accuracy, ...)"
KEYS = ("epoch", "test_accuracy", "test_correct_total", "loss", "step", "state", "arguments")
MAX_PATTERN_CHARS = 500
_REPEATS = {"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"}


@dataclass(frozen=True)
class LogPatterns:
    """A declared format: ``patterns`` maps names in KEYS to compiled expressions."""

    patterns: dict = field(default_factory=dict)
    epoch_base: Optional[int] = None
    name: str = NAME

    @classmethod
    def from_mapping(cls, raw: dict, source: str = "the declared log format",
                     name: str = NAME) -> "LogPatterns":
        """Validated patterns; a LogError names the entry, what it must be and what it was."""
        compiled, base = {}, None
        for key, text in raw.items():
            if key == "epoch_base":
                if str(text).strip() not in ("0", "1"):
                    raise LogError(f"{source}: epoch_base must be 0 or 1, got {text!r}")
                base = int(str(text).strip())
                continue
            if key not in KEYS:
                raise LogError(f"{source}: unknown pattern name {key!r}; use {', '.join(KEYS)}, "
                               f"epoch_base")
            compiled[key] = _compile(key, str(text), source)
        if "test_accuracy" not in compiled and "test_correct_total" not in compiled:
            raise LogError(f"{source}: declare test_accuracy or test_correct_total (what an "
                           f"evaluation prints); got only {', '.join(compiled) or 'nothing'}")
        return cls(compiled, base, name)

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


def _compile(key: str, text: str, source: str) -> re.Pattern:
    if len(text) > MAX_PATTERN_CHARS:
        raise LogError(f"{source}: pattern {key} is {len(text)} characters, over "
                       f"{MAX_PATTERN_CHARS}")
    try:
        pattern = re.compile(text)
        tree = _sre.parse(text)
    except re.error as exc:
        raise LogError(f"{source}: pattern {key} {text!r} is no regular expression ({exc})") from None
    if _nested_repeat(tree, False):
        raise LogError(f"{source}: pattern {key} {text!r} repeats a group that itself repeats "
                       f"(like (a+)+): its time can explode on a long line; write it without "
                       f"the nesting")
    if pattern.groups < (2 if key == "test_correct_total" else 1) and key not in ("state", "arguments"):
        raise LogError(f"{source}: pattern {key} {text!r} needs a group around the value it reads")
    return pattern


def _nested_repeat(tree, inside: bool) -> bool:
    for op, arg in tree:
        name = str(op)
        if name in _REPEATS:
            many = arg[1] > 1          # an optional (?) part repeats nothing
            if inside and many:
                return True
            if _nested_repeat(arg[2], inside or many):
                return True
        elif name == "SUBPATTERN":
            if _nested_repeat(arg[-1], inside):
                return True
        elif name == "BRANCH":
            if any(_nested_repeat(b, inside) for b in arg[1]):
                return True
    return False


def sniff(lines: LogLines, patterns: LogPatterns) -> int:
    evals = [p for k, p in patterns.patterns.items() if k in ("test_accuracy", "test_correct_total")]
    return sum(1 for _, text in lines if any(p.search(text[:MAX_EVENT_CHARS]) for p in evals))


def _group(m: re.Match, name: str, index: int) -> Optional[str]:
    return m.groupdict().get(name) or (m.group(index) if m.re.groups >= index else None)


class _Reader:
    def __init__(self, patterns: LogPatterns) -> None:
        self.p = patterns.patterns
        self.base = patterns.epoch_base
        self.args: dict = {}
        self.cut, self.dropped = Listed(), Listed()
        self.states: dict = {}
        self.state: Optional[StateRecord] = None
        self.epoch: Optional[int] = None
        self.loss: Optional[float] = None
        self.evals: list = []      # (state, epoch printed, accuracy, correct, total, loss)

    def line(self, text: str) -> bool:
        text, hit = text[:MAX_EVENT_CHARS], False
        for key in ("arguments", "state", "epoch", "step", "loss", "test_correct_total",
                    "test_accuracy"):
            pattern = self.p.get(key)
            m = pattern.search(text) if pattern is not None else None
            if m:
                hit = getattr(self, f"on_{key}")(m) is not False or hit
                if key == "test_correct_total":
                    return True    # the counts are the evaluation; a printed % beside them is not
        return hit

    def on_arguments(self, m: re.Match) -> None:
        read_namespace(m.string, self.args, self.cut, m.end())

    def on_state(self, m: re.Match) -> bool:
        index = int(m.group(1)) if m.re.groups and (m.group(1) or "").isdigit() else len(self.states)
        if index not in self.states and len(self.states) >= MAX_STATES:
            return False
        self.state = self.states.setdefault(index, StateRecord(index=index))
        self.epoch = None
        return True

    def on_epoch(self, m: re.Match) -> bool:
        value = _group(m, "epoch", 1)
        if value is None or not value.isdigit():
            return False
        self.epoch = int(value)
        return True

    def on_step(self, m: re.Match) -> None:
        pass   # counted as understood; the first-batch loss comes with the loss pattern

    def on_loss(self, m: re.Match) -> bool:
        try:
            self.loss = float(_group(m, "loss", 1))
        except (TypeError, ValueError):
            return False
        return True

    def on_test_correct_total(self, m: re.Match) -> bool:
        try:
            correct, total = int(_group(m, "correct", 1)), int(_group(m, "total", 2))
        except (TypeError, ValueError):
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
        self.evals.append((self.state.index, self.epoch, accuracy, correct, total, self.loss))
        return True

    def finish(self) -> list:
        fraction = bool(self.evals) and all(e[3] is None and e[2] <= 1.0 for e in self.evals)
        printed = [e[1] for e in self.evals if e[1] is not None]
        base = self.base if self.base is not None else (min(printed) if printed and min(printed) in (0, 1) else 0)
        replaced: dict = {}    # state -> epochs whose earlier evaluation a later one replaced
        for state_index, epoch, acc, correct, total, loss in self.evals:
            acc = round(acc * 100.0, 9) if fraction and correct is None else acc
            state = self.states[state_index]
            index = (epoch - base) if epoch is not None else len(state.epochs)
            problem = percent_problem(acc, "test accuracy")
            if problem or index < 0:
                self.dropped.add(f"state {state_index} epoch {epoch}: not entered "
                                 f"({problem or f'epoch {epoch} below epoch_base {base}'})")
                continue
            if any(e.epoch == index for e in state.epochs):   # a repeat replaces, and is said
                replaced.setdefault(state_index, []).append(index)
            state.epochs = [e for e in state.epochs if e.epoch != index]
            state.epochs.append(EpochRecord(epoch=index, train_loss=loss if loss is not None else float("nan"),
                                            train_accuracy=float("nan"), test_accuracy=acc,
                                            test_correct=correct, test_n=total))
        for state_index, epochs in replaced.items():
            self.dropped.add(f"state {state_index}: {len(epochs)} evaluation(s) replaced by a later one "
                             f"of the same epoch (epochs {min(epochs)}-{max(epochs)}): a resumed run, "
                             f"or phases the format does not tell apart (declare a state pattern)")
        for state in self.states.values():
            first_n = state.epochs[0].test_n if state.epochs else None
            if first_n and all(e.test_n == first_n for e in state.epochs):
                state.test_n = state.epochs[0].test_n
        return list(self.states.values())


def parse(lines: LogLines, patterns: LogPatterns) -> dict:
    reader, tally = _Reader(patterns), Tally()
    for number, text in lines:
        if reader.line(text):
            tally.hit()
        else:
            tally.miss(number, text)
    states = reader.finish()
    return {"args": reader.args, "states": states, "tally": tally, "complete": False,
            "dropped": reader.dropped.as_list(),
            "notes": {"arguments_cut": reader.cut.as_list(), "declared_format": patterns.name,
                      "declared_patterns": {k: p.pattern for k, p in patterns.patterns.items()}}}


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
        "arguments": r"Namespace\(",
    },
}


def builtin(name: str) -> LogPatterns:
    return LogPatterns.from_mapping(BUILTIN[name], f"built-in format {name}", name)
