"""Log formats by name, detection, and the RunRecord a parsed log becomes.

``parse_log(path, fmt=None)`` reads a research-format log, an MLLOG file or a timm output folder
into the same :class:`~harness.record.RunRecord` the engine produces. Without ``fmt`` the format
is detected: a folder (or summary.csv) is timm's; a file goes to the format most of whose marker
lines it holds.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from harness.logs import arguments, declared, imagenet, mllog, research, timm
from harness.logs.source import LogError, LogLines, read_lines
from harness.record import RunRecord


@dataclass(frozen=True)
class LogFormat:
    name: str
    description: str
    read: Callable[[Path, Optional[LogLines]], tuple]   # (path, its lines when a file) -> (facts, lines)
    sniff: Callable[[Path, Optional[LogLines]], int]    # how many marker lines; 0: not this format


def _text_format(module) -> LogFormat:
    def read(path: Path, lines: Optional[LogLines]) -> tuple:
        if lines is None:
            raise LogError(f"{path} is a folder; the {module.NAME} format reads one log file")
        return module.parse(lines), lines
    return LogFormat(module.NAME, module.DESCRIPTION, read,
                     lambda path, lines: module.sniff(lines) if lines is not None else 0)


def _declared_format(patterns: declared.LogPatterns, description: str) -> LogFormat:
    def read(path: Path, lines: Optional[LogLines]) -> tuple:
        if lines is None:
            raise LogError(f"{path} is a folder; the {patterns.name} format reads one log file")
        return declared.parse(lines, patterns), lines
    return LogFormat(patterns.name, description, read,
                     lambda path, lines: declared.sniff(lines, patterns) if lines is not None else 0)


FORMATS: dict[str, LogFormat] = {
    research.NAME: _text_format(research),
    imagenet.NAME: _text_format(imagenet),
    mllog.NAME: _text_format(mllog),
    timm.NAME: LogFormat(timm.NAME, timm.DESCRIPTION,
                         lambda path, lines: timm.parse_folder(path), lambda path, lines: timm.sniff_path(path)),
    "pytorch-examples": _declared_format(declared.builtin("pytorch-examples"),
                                         "PyTorch examples' 'Test set: ... Accuracy: 9894/10000' lines"),
    "epoch-acc": _declared_format(declared.builtin("epoch-acc"),
                                  "'Epoch 3/100 ... acc=0.8595' lines, behind any logging prefix"),
}


GENERIC = ("pytorch-examples", "epoch-acc")   # built-in declared formats: tried last


def _source(path: Path) -> Optional[LogLines]:
    """The lines of a log file (read once, for detection and parsing); None for a folder."""
    if not path.exists():
        raise LogError(f"{path}: no such file or folder; pass a training log, an MLLOG file or "
                       f"a timm output folder")
    return None if path.is_dir() or path.name == timm.SUMMARY else read_lines(path)


def _scores(path: Path, lines: Optional[LogLines], formats: dict) -> dict:
    """How many marker lines of each format the log holds, generic formats counted apart."""
    return {name: fmt.sniff(path, lines) for name, fmt in formats.items()}


def _detect(path: Path, lines: Optional[LogLines], option: str,
            formats: Optional[dict] = None, scores: Optional[dict] = None) -> str:
    formats = formats or FORMATS
    scores = dict(scores if scores is not None else _scores(path, lines, formats))
    marked = {n: v for n, v in scores.items() if n not in GENERIC and v > 0}
    if marked:   # a format's own markers (MLPerf events, a user's declaration) outrank
        scores = marked   # generic "Epoch ... acc=" lines, which many logs also print
    best = max(scores, key=scores.get)
    if scores[best] <= 0:
        raise LogError(f"{path}: cannot tell its format (no Namespace/Epoch:/valid_accuracy "
                       f"lines, no Prec@1/Acc@1 lines, no :::MLLOG lines, no summary.csv); pass "
                       f"{option} {'|'.join(FORMATS)}, or declare its format (harness_log_patterns; "
                       f"harness log FILE --pattern NAME=REGEX tries one)")
    return best


def detect(path: Path, option: str = "--log-format") -> str:
    path = Path(path)
    return _detect(path, _source(path), option)


def parse_log(path: Path, fmt: Optional[str] = None, option: str = "--log-format",
              patterns: Optional[declared.LogPatterns] = None) -> RunRecord:
    """``option`` is how the caller's user names the format override, for error messages.
    ``patterns`` (a user-declared format, :mod:`harness.logs.declared`) is the format ``declared``,
    and the one used when ``fmt`` is not given."""
    path = Path(path)
    formats = dict(FORMATS)
    if patterns is not None:
        formats[declared.NAME] = _declared_format(patterns, declared.DESCRIPTION)
        fmt = fmt or declared.NAME
    if fmt is not None and fmt not in formats:
        raise LogError(f"{option} {fmt!r} is unknown; use one of {', '.join(formats)}")
    lines = _source(path)
    if fmt is None:
        scores = _scores(path, lines, formats)
        name = _detect(path, lines, option, formats, scores)
        chosen = "detected: " + ", ".join(f"{n} {v} marker line{'s' * (v != 1)}"
                                          for n, v in sorted(scores.items(), key=lambda kv: -kv[1]))
    else:
        name, chosen = fmt, f"named ({option} {fmt})"
    facts, lines = formats[name].read(path, lines)
    record = to_record(name, lines, facts)
    record.notes["format_chosen"] = chosen
    return record


def to_record(fmt: str, lines: LogLines, facts: dict) -> RunRecord:
    args = facts["args"]
    dataset = arguments.dataset_of(args) or facts.get("dataset")
    model = arguments.model_name(args)
    claims, init = arguments.pretrained_claim(args, model)
    digest = hashlib.sha256(f"{fmt}\n{sorted(map(str, args.items()))}".encode())
    for _, text in lines:
        digest.update(text.encode("utf-8", errors="replace") + b"\n")
    notes = facts["tally"].notes(lines)
    notes.update(facts.get("notes", {}))
    notes["epochs_without_test_accuracy"] = list(facts["dropped"])
    notes["recipe_from_log"] = bool(arguments.recipe(args))
    return RunRecord(
        run_id=f"log-{digest.hexdigest()[:12]}", source=f"log:{fmt}", dataset=dataset or "",
        num_classes=arguments.num_classes(dataset, args) or facts.get("num_classes") or 0,
        model=model,
        spec={"args": args, "recipe": arguments.recipe(args), "seed": args.get("seed")},
        init=init, claims_pretrained=claims, states=facts["states"],
        environment={"source": f"training log ({fmt})", "path": lines.path},
        complete=bool(facts["complete"]), notes=notes)
