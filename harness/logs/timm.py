"""timm's ``train.py`` output folder: ``summary.csv`` (one row per epoch: epoch, train_loss,
eval_loss, eval_top1, eval_top5, lr) and ``args.yaml`` (the arguments, yaml.safe_dump'ed).

timm logs no first-batch loss and no training accuracy in these files; the record says so. The
run is state 0; it exists once the csv header is read.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Optional

import yaml

from harness.logs.source import LogError, LogLines, Tally, read_lines
from harness.record import EpochRecord, StateRecord

NAME = "timm"
DESCRIPTION = "timm train.py output folder (summary.csv, args.yaml)"
SUMMARY = "summary.csv"
ARGS = "args.yaml"


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
    facts["notes"] = {"args_yaml": problem or str(root / ARGS),
                      "first_batch_loss": "not in timm's summary.csv"}
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
