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

from harness.logs import arguments, mllog, research, timm
from harness.logs.source import LogError, LogLines, read_lines
from harness.record import RunRecord


@dataclass(frozen=True)
class LogFormat:
    name: str
    description: str
    read: Callable[[Path], tuple]          # path -> (facts, lines)
    sniff: Callable[[Path, Optional[LogLines]], int]


def _text_format(module) -> Callable[[Path], tuple]:
    def read(path: Path) -> tuple:
        lines = read_lines(path)
        return module.parse(lines), lines
    return read


FORMATS: dict[str, LogFormat] = {
    research.NAME: LogFormat(research.NAME, "the research group's main_imp_fillback.py log",
                             _text_format(research), lambda p, lines: research.sniff(lines) if lines else 0),
    mllog.NAME: LogFormat(mllog.NAME, "MLPerf ':::MLLOG {json}' lines",
                          _text_format(mllog), lambda p, lines: mllog.sniff(lines) if lines else 0),
    timm.NAME: LogFormat(timm.NAME, "timm train.py output folder (summary.csv, args.yaml)",
                         timm.parse_folder, lambda p, lines: timm.sniff_path(p)),
}


def detect(path: Path, option: str = "--log-format") -> str:
    path = Path(path)
    if not path.exists():
        raise LogError(f"{path}: no such file or folder; pass a training log, an MLLOG file or "
                       f"a timm output folder")
    lines = read_lines(path) if path.is_file() and path.name != timm.SUMMARY else None
    scores = {name: fmt.sniff(path, lines) for name, fmt in FORMATS.items()}
    best = max(scores, key=scores.get)
    if scores[best] <= 0:
        raise LogError(f"{path}: cannot tell its format (no Namespace/Epoch:/valid_accuracy "
                       f"lines, no :::MLLOG lines, no summary.csv); pass {option} "
                       f"{'|'.join(FORMATS)}")
    return best


def parse_log(path: Path, fmt: Optional[str] = None, option: str = "--log-format") -> RunRecord:
    """``option`` is how the caller's user names the format override, for error messages."""
    path = Path(path)
    name = fmt or detect(path, option)
    if name not in FORMATS:
        raise LogError(f"{option} {name!r} is unknown; use one of {', '.join(FORMATS)}")
    if not path.exists():
        raise LogError(f"{path}: no such file or folder")
    if name != timm.NAME and path.is_dir():
        raise LogError(f"{path} is a folder; the {name} format reads one log file")
    facts, lines = FORMATS[name].read(path)
    return to_record(name, lines, facts)


def to_record(fmt: str, lines: LogLines, facts: dict) -> RunRecord:
    args = facts["args"]
    dataset = arguments.dataset_of(args)
    model = arguments.model_name(args)
    claims, init = arguments.pretrained_claim(args, model)
    digest = hashlib.sha256(repr((fmt, lines.lines, sorted(map(str, args.items())))).encode())
    notes = facts["tally"].notes(lines)
    notes.update(facts.get("notes", {}))
    notes["epochs_without_test_accuracy"] = list(facts["dropped"])
    notes["recipe_from_log"] = bool(arguments.recipe(args))
    return RunRecord(
        run_id=f"log-{digest.hexdigest()[:12]}", source=f"log:{fmt}", dataset=dataset or "",
        num_classes=arguments.num_classes(dataset, args), model=model,
        spec={"args": args, "recipe": arguments.recipe(args), "seed": args.get("seed")},
        init=init, claims_pretrained=claims, states=facts["states"],
        environment={"source": f"training log ({fmt})", "path": lines.path},
        complete=bool(facts["complete"]), notes=notes)
