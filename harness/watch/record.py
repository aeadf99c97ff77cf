"""The record of a log that is still being written: its lines so far, read again with the
harness's own log readers (the same as ``harness log`` and ``--harness-from-log``) whenever a line
may change a verdict.

Lines are kept, as bytes, up to :data:`~harness.logs.bounds.MAX_LOG_BYTES` (the bound every log
reader has); past it, later lines are not read and :attr:`LiveRecord.full` says so. A line may
change a verdict when it holds one of its format's markers (arguments, an evaluation, a state's
start or end, a remaining-weights report, a non-finite number); other lines (per-batch progress)
are read with the next such line, or every :data:`READ_EVERY` lines.
"""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Optional

from harness.logs import FORMATS, LogError, split_lines, to_record
from harness.logs.arguments import NUM_CLASSES, dataset_name
from harness.logs.bounds import MAX_LOG_BYTES
from harness.logs.registry import GENERIC, _declared_format, _detect
from harness.logs import declared
from harness.record import RunRecord

READ_EVERY = 500      # lines without a marker between two reads
_NON_FINITE = r"|\bnan\b|\binf\b"
# per format, the lines that may change a verdict (the rest are read with the next of them)
TRIGGERS = {
    "research": re.compile(r"Namespace\(|valid_accuracy|pruning state|completed!|best SA|"
                           r"[Rr]emain(?:ing)? weight" + _NON_FINITE, re.IGNORECASE),
    "mllog": re.compile(r"Namespace\(|eval_accuracy|run_stop|run_start|epoch_stop|block_stop"
                        + _NON_FINITE, re.IGNORECASE),
}
WATCHABLE = tuple(name for name in FORMATS if name != "timm")   # timm's is a folder of files


class LiveRecord:
    """The lines of one log so far and the record they read as (see the module doc)."""

    def __init__(self, path: str, fmt: Optional[str] = None, patterns=None,
                 dataset: Optional[str] = None) -> None:
        self.path = str(path)
        self.formats = {name: FORMATS[name] for name in WATCHABLE}
        if patterns is not None:
            self.formats[declared.NAME] = _declared_format(patterns, declared.DESCRIPTION)
            fmt = fmt or declared.NAME
        if fmt == declared.NAME and patterns is None:
            raise LogError("--log-format declared needs the format declared: --pattern "
                           "NAME=REGEX (repeatable) or harness_log_patterns in the ini file")
        if fmt is not None and fmt not in self.formats:
            raise LogError(f"--log-format {fmt!r} cannot be watched; use one of "
                           f"{', '.join(self.formats)} (a timm output folder: watch the console "
                           f"log its train.py prints)")
        self.fmt = fmt
        self.dataset = dataset_name(dataset)
        self.buffer = bytearray()
        self.lines = 0
        self.since_read = 0
        self.full = False
        self.record: Optional[RunRecord] = None

    def add(self, text: str) -> bool:
        """Keep one complete line; True when the record should be read again now."""
        data = text.encode("utf-8", errors="replace") + b"\n"
        if len(self.buffer) + len(data) > MAX_LOG_BYTES:
            self.full = True
            return False
        self.buffer += data
        self.lines += 1
        self.since_read += 1
        return self.since_read >= READ_EVERY or self._marked(text)

    def _marked(self, text: str) -> bool:
        trigger = TRIGGERS.get(self.fmt or "")
        if trigger is not None:
            return bool(trigger.search(text))
        one = split_lines(data=text.encode("utf-8", errors="replace") + b"\n", path=self.path)
        return any(f.sniff(Path(self.path), one) for n, f in self.formats.items()
                   if self.fmt in (None, n)) or bool(re.search(r"Namespace\(" + _NON_FINITE, text))

    def read(self) -> Optional[RunRecord]:
        """The record of the lines so far (None while its format cannot be told yet)."""
        self.since_read = 0
        lines = split_lines(bytes(self.buffer), self.path)
        if self.fmt is None:
            try:
                self.fmt = _detect(Path(self.path), lines, "--log-format", self.formats)
            except LogError:
                return None
            if self.fmt in GENERIC and self.lines < 2:
                self.fmt = None          # one generic line is not enough to tell
                return None
        facts, lines = self.formats[self.fmt].read(Path(self.path), lines)
        record = to_record(self.fmt, lines, facts)
        if self.dataset and self.dataset != record.dataset:
            record = replace(record, dataset=self.dataset, num_classes=NUM_CLASSES.get(self.dataset, 0),
                             notes=dict(record.notes, dataset_from="--dataset"))
        self.record = record
        return record
