"""timm's ``train.py`` output folder: ``summary.csv`` (one row per epoch: epoch, train_loss,
eval_loss, eval_top1, eval_top5, lr) and ``args.yaml`` (the arguments, yaml.safe_dump'ed).

timm writes no first-batch loss and no training accuracy to these files. When the folder also
holds the console output (``*.log`` / ``*.txt``, e.g. ``train.py ... | tee train.log``), its
``Train: 0 [   0/352 (  0%)]  Loss: 2.33 (2.33)`` lines give the first batch and the running loss
inside epoch 0 (timm prints 3 significant digits; it logs no training accuracy). The run is
state 0; it exists once the csv header is read.
"""
from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import Optional

import yaml

from harness.logs.source import LogError, LogLines, Tally, read_lines
from harness.record import EpochRecord, StateRecord

NAME = "timm"
DESCRIPTION = "timm train.py output folder (summary.csv, args.yaml)"
SUMMARY = "summary.csv"
ARGS = "args.yaml"
CONSOLE = ("*.log", "*.txt")
_TRAIN = re.compile(r"Train:\s*(\d{1,9})\s*\[\s*(\d{1,9})/(\d{1,9})\s*(?:\([^)]*\))?\]\s+"
                    r"Loss:\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d{1,4})?|nan|inf)"
                    r"(?:\s*\(([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d{1,4})?|nan|inf)\))?")


def folder(path: Path) -> Path:
    """The output folder of ``path`` (the folder itself, or the folder of its summary.csv)."""
    path = Path(path)
    return path.parent if path.name == SUMMARY else path


def sniff_path(path: Path) -> int:
    return 1 if (folder(path) / SUMMARY).is_file() else 0


def parse_folder(path: Path) -> tuple[dict, LogLines]:
    root = folder(path)
    if not (root / SUMMARY).is_file():
        raise LogError(f"{path}: no {SUMMARY} there; a timm output folder holds summary.csv "
                       f"and args.yaml (pass the folder, or --log-format for another format)")
    lines = read_lines(root / SUMMARY)
    facts = parse(lines)
    args, problem = _args(root / ARGS)
    facts["args"] = args
    facts["notes"] = {"args_yaml": problem or str(root / ARGS)}
    if facts["states"]:
        facts["notes"].update(_console(root, facts["states"][0]))
    epochs = args.get("epochs")
    if facts["states"] and isinstance(epochs, int) and not isinstance(epochs, bool):
        facts["complete"] = len(facts["states"][0].epochs) >= epochs
    return facts, lines


def parse(lines: LogLines) -> dict:
    """Rows of summary.csv text (a header names the columns; a repeated header restarts them)."""
    tally, columns, state = Tally(), None, None
    for number, text in lines:
        cells = _cells(text)
        if cells and cells[0] == "epoch":
            columns = cells
            state = state or StateRecord(index=0)
            tally.hit()
            continue
        row = _row(columns, cells)
        if row is None:
            tally.miss(number, text)
            continue
        state.epochs = [e for e in state.epochs if e.epoch != row.epoch] + [row]  # a resume rewrites
        tally.hit()
    return {"args": {}, "states": [state] if state else [], "tally": tally, "complete": False,
            "dropped": []}


def _cells(text: str) -> list:
    try:
        return [c.strip() for c in next(csv.reader([text]), [])]
    except csv.Error:
        return []


def _row(columns: Optional[list], cells: list) -> Optional[EpochRecord]:
    if columns is None or len(cells) != len(columns):
        return None
    values = dict(zip(columns, cells))
    try:
        epoch = int(values["epoch"])
        number = {k: float(v) for k, v in values.items() if k != "epoch" and v != ""}
    except (ValueError, KeyError):
        return None
    if epoch < 0 or "eval_top1" not in number:
        return None
    return EpochRecord(epoch=epoch, train_loss=number.get("train_loss", math.nan),
                       train_accuracy=number.get("train_top1", math.nan),
                       test_accuracy=number["eval_top1"], lr=number.get("lr"))


def _console(root: Path, state: StateRecord) -> dict:
    """First batch and epoch-0 running loss from a saved console log, if the folder holds one."""
    for path in sorted(p for pattern in CONSOLE for p in root.glob(pattern) if p.is_file()):
        curve = [(int(m[2]), int(m[3]), float(m[4]), float(m[5]) if m[5] else float(m[4]))
                 for _, text in read_lines(path) if (m := _TRAIN.search(text)) and m[1] == "0"]
        if curve:
            state.intra_epoch = [(step, steps, running, None) for step, steps, _, running in curve]
            if curve[0][0] == 0:
                state.first_batch_loss = curve[0][2]
            return {"console_log": str(path), "first_batch_loss": "from the console log "
                    "(timm prints 3 significant digits)"}
    return {"console_log": None, "first_batch_loss": "not in timm's summary.csv, and no console "
            "log (*.log, *.txt) with Train: lines in the folder"}


def _args(path: Path) -> tuple[dict, Optional[str]]:
    if not path.is_file():
        return {}, f"{path.name} missing: no run arguments"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8", errors="replace"))
    except yaml.YAMLError as exc:
        return {}, f"{path.name} unreadable ({type(exc).__name__}): no run arguments"
    if not isinstance(data, dict):
        return {}, f"{path.name} holds {type(data).__name__}, not a mapping: no run arguments"
    return {str(k): v for k, v in data.items()}, None
