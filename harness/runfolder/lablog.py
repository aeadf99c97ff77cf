"""What a declared layout reads from a lab's own log: each state's remaining-weights line and
the claim a line states (:mod:`harness.runfolder.declaration` names the patterns).

The log is read by :func:`harness.logs.source.read_lines` (bounded, regular files only, no link
followed) and each line is searched only up to :data:`~harness.logs.bounds.MAX_EVENT_CHARS`.
A state's remaining lines are kept as the research reader keeps its ``Remaining weights`` lines
(``line``, ``remaining``, ``at_start``), with the line's own text, so the checks quote it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from harness.logs.bounds import MAX_EVENT_CHARS, MAX_LISTED, MAX_STATES, clip, read_count
from harness.runfolder.declaration import CLAIMS, RunLayout, claim_value
from harness.runfolder.layout import RunFolderError

MAX_LINES_PER_STATE = 20


@dataclass(frozen=True)
class LabLog:
    path: Path
    remaining: dict = field(default_factory=dict)  # state -> [{"line", "remaining", "text", ...}]
    claim: dict = field(default_factory=dict)      # claim field -> typed value
    claim_line: Optional[int] = None
    problems: tuple = ()                           # lines whose values were refused, with why
    refused: dict = field(default_factory=dict)    # state -> [{"line", "why"}]: refused remaining lines

    def claim_sources(self) -> dict:
        return {k: f"log line {self.claim_line}" for k in self.claim}


def read_lab_log(path: Path, spec: RunLayout, follow_links: bool = False) -> LabLog:
    """The remaining lines and the claim of the log at ``path`` (``follow_links``: a log the
    user named; one found in the folder is read only when no link leads to it). A LogError or
    :class:`RunFolderError` when it cannot be read, or a claim it states is no claim."""
    from harness.logs.source import read_lines

    reader = _Reader(spec, path)
    for number, text in read_lines(path, follow_links=follow_links):
        reader.line(number, text[:MAX_EVENT_CHARS])
    return LabLog(Path(path), reader.remaining, reader.claim, reader.claim_at, tuple(reader.problems),
                  reader.refused)


class _Reader:
    def __init__(self, spec: RunLayout, path: Path) -> None:
        self.spec, self.path = spec, path
        self.current: Optional[int] = None
        self.remaining: dict = {}
        self.claim: dict = {}
        self.claim_at: Optional[int] = None
        self.problems: list = []
        self.refused: dict = {}

    def line(self, number: int, text: str) -> None:
        spec = self.spec
        if spec.claim_line is not None and self.claim_at is None:
            m = spec.claim_line.search(text)
            if m:
                self._claim(number, m)
        if spec.state is not None:
            m = spec.state.search(text)
            if m:
                self.current = self._index(number, m)
        if spec.remaining is not None:
            m = spec.remaining.search(text)
            if m:
                self._remaining(number, text, m)

    def _claim(self, number: int, m) -> None:
        where = f"{self.path} line {number}"
        found = {k: v for k, v in m.groupdict().items() if k in CLAIMS and v is not None}
        self.claim = {k: claim_value(k, v, where) for k, v in found.items()}
        self.claim_at = number

    def _index(self, number: int, m) -> Optional[int]:
        text = m.groupdict().get("state") or (m.group(1) if m.re.groups else None)
        value, why = read_count(text, "the state pattern's group")   # ASCII digits, bounded
        if why:
            self._problem(number, f"{why} (not a state number)")
        return value

    def _remaining(self, number: int, text: str, m) -> None:
        index = self._index(number, m) if "state" in m.re.groupindex else self.current
        if index is None:
            return self._problem(number, "a remaining line before any state's header")
        groups = m.groupdict()
        raw = groups.get("remaining")
        try:
            value = float(raw) if raw is not None else 100.0 - float(groups.get("sparsity"))
        except (TypeError, ValueError):
            return self._problem(number, f"{raw or groups.get('sparsity')!r} is no number")
        if not math.isfinite(value) or not 0.0 <= value <= 100.0:
            why = f"{value:g}% of the weights left is not in 0..100"
            if index in self.refused or len(self.refused) < MAX_STATES:
                refused = self.refused.setdefault(index, [])   # its log_consistency fails on it
                if len(refused) < MAX_LINES_PER_STATE:
                    refused.append({"line": number, "why": why, "after_summary": False})
            return self._problem(number, why)
        if index not in self.remaining and len(self.remaining) >= MAX_STATES:
            return self._problem(number, f"more than {MAX_STATES} states: not read")
        kept = self.remaining.setdefault(index, [])
        if len(kept) < MAX_LINES_PER_STATE:
            kept.append({"line": number, "remaining": value, "text": clip(text.strip(), 200),
                         "at_start": True, "after_summary": False})

    def _problem(self, number: int, why: str) -> None:
        if len(self.problems) < MAX_LISTED:
            self.problems.append(f"log line {number}: {why}")


def find_log(folder: Path, spec: RunLayout, given: Optional[Path], candidates: list) -> list:
    """The log files to try, in order: the one given, the declared name, the folder's logs."""
    if given is not None:
        return [Path(given)]
    if spec.log is not None:
        path = Path(folder) / spec.log
        if not path.is_file() and not path.is_symlink():
            raise RunFolderError(f"{folder}: no log {spec.log} in it (declared in {spec.source})")
        return [path]
    return list(candidates)
