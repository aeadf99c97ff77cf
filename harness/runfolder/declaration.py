"""A run folder's layout and its run's claim, declared as data: which files hold which state,
which log line gives a state's remaining weights, and what the run claims.

A declaration is ``key: value`` (or ``key=value``) lines, from ``harness_run_layout`` in
``[tool.pytest.ini_options]``, ``--harness-run-layout KEY=VALUE`` or ``harness log DIR --layout
KEY=VALUE``. Keys (:data:`KEYS`):

- ``preset``: a built-in layout (:data:`PRESETS`; ``research``, the research group's save
  folder, is the one used when nothing is declared); a preset's file names may be changed;
- ``checkpoint``: the file name of a state's last save, with ``{k}`` for the state's number and
  ``*`` / ``?`` as in a glob (``state{k}_checkpoint.pth.tar``); ``best``: its best-validation file;
- ``log``: the log's file name in the folder (default: its ``.log``, ``.txt`` or ``.out`` file);
- ``remaining``: a regular expression for the line that gives a state's weights left, with the
  named group ``remaining`` (percent left) or ``sparsity`` (percent pruned), and ``state`` (the
  state's number) unless ``state`` is declared: a regex of the state's header (group 1 or
  ``state``: its number), after which the next ``remaining`` line is the state's;
- ``claim``: a regex of a log line that states the claim, its named groups among :data:`CLAIMS`;
- the claim (:data:`CLAIMS`): ``method`` (a name: the verdict ids' ``pruning/<method>/...``),
  ``scope`` (``global`` or ``layer-wise``), ``rate`` (the fraction of the remaining weights each
  state prunes, as ``torch.nn.utils.prune`` applies an amount again) or ``final_sparsity`` (at
  the last state, with ``states``: the same rate each state), ``states`` (pruned states after the
  dense State 0), ``nested`` (yes/no; default yes), ``rewind`` (``init`` or ``none``);
- ``init``: the init file, a path inside the folder; ``prunable``: a regex over the weights'
  names (default: every weight of two or more dimensions, convolutions and linear maps).

A value is checked where it is declared; a mistake is one line naming the key, what it must be
and what it was.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Callable, Optional

from harness.regex import MAX_PATTERN_CHARS, PatternError, compile_bounded
from harness.runfolder.layout import RunFolderError

MAX_DIGITS = 8
SCOPES = {"global": "global", "layer-wise": "layer-wise", "layer": "layer-wise"}
REWINDS = ("init", "none")
_BOOLEAN = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}
_METHOD = re.compile(r"[A-Za-z0-9_.-]{1,40}")


def _fraction(text: str, key: str, source: str, low_open: bool) -> float:
    """``0.3`` or ``30%`` as a fraction in (0, 1) (``low_open``) or [0, 1)."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError:
        value = math.nan
    if not (0 < value < 1 if low_open else 0 <= value < 1):
        raise RunFolderError(f"{source}: {key} must be a fraction in {'(0' if low_open else '[0'}, 1) "
                             f"or a percent such as 30%, got {text!r}")
    return value


def _states(text: str, key: str, source: str) -> int:
    if not re.fullmatch(r"[0-9]{1,4}", text.strip()) or int(text) < 1:
        raise RunFolderError(f"{source}: {key} must be a whole number >= 1 (the pruned states "
                             f"after the dense State 0), got {text!r}")
    return int(text)


def _choice(options: dict) -> Callable:
    def read(text: str, key: str, source: str):
        value = options.get(text.strip().lower())
        if value is None:
            raise RunFolderError(f"{source}: {key} must be one of {', '.join(options)}, got {text!r}")
        return value
    return read


def _method(text: str, key: str, source: str) -> str:
    if not _METHOD.fullmatch(text.strip()):
        raise RunFolderError(f"{source}: {key} must be a name of letters, digits, '_', '.' or '-' "
                             f"(it names the verdicts pruning/<method>/...), got {text!r}")
    return text.strip()


CLAIMS: dict[str, Callable] = {
    "method": _method,
    "scope": _choice(SCOPES),
    "rate": lambda t, k, s: _fraction(t, k, s, True),
    "final_sparsity": lambda t, k, s: _fraction(t, k, s, True),
    "states": _states,
    "nested": _choice(_BOOLEAN),
    "rewind": _choice({r: r for r in REWINDS}),
}


def claim_value(key: str, text: str, source: str):
    """A claim's value, typed and checked (``source`` names where it was read, for the message)."""
    return CLAIMS[key](str(text), key, source)


# --- file names ---------------------------------------------------------------------------------
def name_pattern(text: str, key: str, source: str) -> re.Pattern:
    """A file name with ``{k}`` (the state's number) and glob wildcards, as a regex whose group
    ``k`` is the number (digits of any script: two files naming one state are told apart later)."""
    if text.count("{k}") != 1 or "/" in text or "\\" in text or len(text) > MAX_PATTERN_CHARS:
        raise RunFolderError(f"{source}: {key} must be one file name in the folder holding {{k}} "
                             f"once (the state's number), e.g. state{{k}}_checkpoint.pth.tar; got "
                             f"{text[:80]!r}")
    parts = {"{k}": rf"(?P<k>\d{{1,{MAX_DIGITS}}})", "*": ".*?", "?": "."}
    pieces = re.split(r"(\{k\}|\*|\?)", text)
    return re.compile("".join(parts.get(p, re.escape(p)) for p in pieces), re.DOTALL)


def line_pattern(text: str, key: str, source: str, groups: tuple = ()) -> re.Pattern:
    """A declared regex for log lines: bounded, compiled, no repetition nested in a repetition
    (the guard :mod:`harness.logs.declared` applies: such a pattern's time can explode on a long
    line), with one of ``groups`` when given."""
    try:
        pattern = compile_bounded(text, key)
    except PatternError as exc:
        raise RunFolderError(f"{source}: {exc}") from None
    if groups and not set(groups) & set(pattern.groupindex):
        raise RunFolderError(f"{source}: {key} {text!r} needs a named group "
                             f"{' or '.join(f'(?P<{g}>...)' for g in groups)}")
    return pattern




# --- the declaration ----------------------------------------------------------------------------
@dataclass(frozen=True)
class RunLayout:
    """A folder layout: ``reader`` (:data:`harness.runfolder.opener.READERS`) reads its log and
    claim; ``checkpoint`` / ``best`` are file name patterns with ``{k}``."""

    name: str                                   # the preset's name, or "declared"
    reader: str                                 # "research" or "declared"
    checkpoint: str
    best: Optional[str] = None
    log: Optional[str] = None
    remaining: Optional[re.Pattern] = None
    state: Optional[re.Pattern] = None
    claim_line: Optional[re.Pattern] = None
    prunable: Optional[re.Pattern] = None
    init: Optional[str] = None
    claim: tuple = ()                           # ((key, typed value), ...) as declared
    source: str = "the built-in layout"         # where it was declared, for messages and evidence
    lines: tuple = field(default=(), compare=False)   # the declaration as given

    def roles(self) -> dict:
        """``{"checkpoint": regex, "best": regex}`` of the names given."""
        found = {"checkpoint": name_pattern(self.checkpoint, "checkpoint", self.source)}
        if self.best:
            found["best"] = name_pattern(self.best, "best", self.source)
        return found

    @property
    def declared_claim(self) -> dict:
        return dict(self.claim)

    def describe(self) -> str:
        names = self.checkpoint + (f", best {self.best}" if self.best else "")
        return f"{self.name} layout ({names}; from {self.source})"


PRESETS: dict[str, RunLayout] = {p.name: p for p in (
    RunLayout("research", "research", "{k}checkpoint.pth.tar", best="{k}model_SA_best.pth.tar"),
)}
DEFAULT = "research"
_FILE_KEYS = ("checkpoint", "best", "log")
_DECLARED_ONLY = ("remaining", "state", "claim", "prunable", "init", *CLAIMS)
KEYS = ("preset", *_FILE_KEYS, *_DECLARED_ONLY)


def layout_from_lines(lines, source: str) -> Optional[RunLayout]:
    """The layout ``lines`` declare (None: no line); a mistake raises :class:`RunFolderError`."""
    raw: dict = {}
    for line in lines or ():
        line = str(line).strip()
        if not line:
            continue
        m = re.match(r"(\w{1,40})\s*[:=]\s?(.*)$", line)
        if not m:
            raise RunFolderError(f"{source}: {line[:80]!r} is not 'key: value'; keys: {', '.join(KEYS)}")
        if m[1] not in KEYS:
            raise RunFolderError(f"{source}: unknown key {m[1]!r}; keys: {', '.join(KEYS)}")
        if m[1] in raw:
            raise RunFolderError(f"{source}: {m[1]} is declared twice ({raw[m[1]]!r} and "
                                 f"{m[2].strip()!r}); keep one")
        raw[m[1]] = m[2].strip()
    return _layout(raw, source, tuple(str(x) for x in lines or ())) if raw else None


def _layout(raw: dict, source: str, lines: tuple) -> RunLayout:
    preset = raw.get("preset")
    if preset is not None:
        if preset not in PRESETS:
            raise RunFolderError(f"{source}: preset {preset!r} is unknown; known: {', '.join(PRESETS)}")
        extra = [k for k in raw if k in _DECLARED_ONLY]
        if extra:
            raise RunFolderError(f"{source}: the {preset} preset reads its claim and log lines from "
                                 f"its own log; drop {', '.join(extra)} (or the preset)")
        files = {k: raw[k] for k in _FILE_KEYS if k in raw}
        found = replace(PRESETS[preset], **files, source=source, lines=lines)
        found.roles()                           # the names are checked here
        return found
    if "checkpoint" not in raw:
        raise RunFolderError(f"{source}: declare checkpoint: NAME with {{k}} for the state's number "
                             f"(e.g. checkpoint: state{{k}}_checkpoint.pth.tar), or preset: "
                             f"{', '.join(PRESETS)}")
    claim = tuple((k, claim_value(k, raw[k], source)) for k in CLAIMS if k in raw)
    remaining = raw.get("remaining")
    state = raw.get("state")
    found = RunLayout(
        "declared", "declared", raw["checkpoint"], best=raw.get("best"), log=raw.get("log"),
        remaining=line_pattern(remaining, "remaining", source, ("remaining", "sparsity"))
        if remaining else None,
        state=line_pattern(state, "state", source) if state else None,
        claim_line=line_pattern(raw["claim"], "claim", source, tuple(CLAIMS)) if raw.get("claim") else None,
        prunable=line_pattern(raw["prunable"], "prunable", source) if raw.get("prunable") else None,
        init=raw.get("init"), claim=claim, source=source, lines=lines)
    if found.remaining is not None and "state" not in found.remaining.groupindex and found.state is None:
        raise RunFolderError(f"{source}: remaining {remaining!r} has no (?P<state>...) group; add "
                             f"one, or declare state: REGEX for the line that opens a state")
    if found.log is not None and ("/" in found.log or "\\" in found.log):
        raise RunFolderError(f"{source}: log must be a file name in the folder, got {found.log!r}")
    found.roles()
    return found
