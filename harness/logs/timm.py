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

from harness.logs.bounds import (MAX_EPOCHS, MAX_EVENT_CHARS, MiB, NUMBER, EvenCurve, Listed,
                                 add_argument, curve_cut, percent_problem)
from harness.logs.source import LogError, LogLines, Tally, link_problem, read_lines, read_regular
from harness.record import EpochRecord, StateRecord

NAME = "timm"
DESCRIPTION = "timm train.py output folder (summary.csv, args.yaml)"
SUMMARY = "summary.csv"
ARGS = "args.yaml"
CONSOLE = ("*.log", "*.txt")
MAX_CONSOLE_FILES = 16            # console logs looked into
MAX_ARGS_BYTES = 1 * MiB          # timm's args.yaml is ~5 KB
MAX_ARGS_NODES = 10_000           # YAML values once aliases are expanded (timm's: ~300)
MAX_ARGS_DEPTH = 64
_TRAIN = re.compile(rf"Train:\s*(\d{{1,9}})\s*\[\s*(\d{{1,9}})/(\d{{1,9}})\s*(?:\([^)]{{0,32}}\))?\]\s+"
                    rf"Loss:\s*{NUMBER}(?:\s*\({NUMBER}\))?")


def folder(path: Path) -> Path:
    """The output folder of ``path`` (the folder itself, or the folder of its summary.csv)."""
    path = Path(path)
    return path.parent if path.name == SUMMARY else path


def sniff_path(path: Path) -> int:
    summary = folder(path) / SUMMARY
    return 1 if summary.is_file() or summary.is_symlink() else 0


def parse_folder(path: Path) -> tuple[dict, LogLines]:
    """Read only regular files directly inside the folder: a symbolic link (which may point
    anywhere) is refused, and said so."""
    root = folder(path)
    refused = link_problem(root / SUMMARY)
    if refused:
        raise LogError(f"{root}: {refused}; copy the file into the folder")
    if not (root / SUMMARY).is_file():
        raise LogError(f"{path}: no {SUMMARY} there; a timm output folder holds summary.csv "
                       f"and args.yaml (pass the folder, or --log-format for another format)")
    lines = read_lines(root / SUMMARY, follow_links=False)
    facts, refused = parse(lines), []
    args, problem, cut = _args(root / ARGS, refused)
    facts["args"] = args
    facts["notes"] = {"args_yaml": problem or str(root / ARGS), "arguments_cut": cut.as_list(),
                      "refused_files": refused}
    if facts["states"]:
        facts["notes"].update(_console(root, facts["states"][0], refused))
    epochs = args.get("epochs")
    if facts["states"] and isinstance(epochs, int) and not isinstance(epochs, bool):
        facts["complete"] = len(facts["states"][0].epochs) >= epochs
    return facts, lines


def parse(lines: LogLines) -> dict:
    """Rows of summary.csv text (a header names the columns; a repeated header restarts them)."""
    tally, columns, state, rows = Tally(), None, None, {}
    for number, text in lines:
        if len(text) > MAX_EVENT_CHARS:
            tally.refuse(number, text, f"a row of {len(text):,} characters, over the "
                                       f"{MAX_EVENT_CHARS:,} a row is read up to; not read")
            continue
        cells = _cells(text)
        if cells and cells[0] == "epoch":
            columns = cells
            state = state or StateRecord(index=0)
            tally.hit()
            continue
        row, problem = _row(columns, cells)
        if row is not None and row.epoch not in rows and len(rows) >= MAX_EPOCHS:
            row, problem = None, (f"over the {MAX_EPOCHS:,} epochs a state may hold: "
                                  f"epoch {row.epoch} not entered")
        if problem:
            tally.refuse(number, text, problem)
            continue
        if row is None:
            tally.miss(number, text)
            continue
        rows.pop(row.epoch, None)   # a resume rewrites its epoch
        rows[row.epoch] = row
        tally.hit()
    if state is not None:
        state.epochs = list(rows.values())
    return {"args": {}, "states": [state] if state else [], "tally": tally, "complete": False,
            "dropped": []}


def _cells(text: str) -> list:
    try:
        return [c.strip() for c in next(csv.reader([text]), [])]
    except csv.Error:
        return []


def _row(columns: Optional[list], cells: list) -> tuple[Optional[EpochRecord], Optional[str]]:
    """The epoch a row holds, or why its accuracy is impossible (the row is then not entered)."""
    if columns is None or len(cells) != len(columns):
        return None, None
    values = dict(zip(columns, cells))
    try:
        epoch = int(values["epoch"])
        number = {k: float(v) for k, v in values.items() if k != "epoch" and v != ""}
    except (ValueError, KeyError):
        return None, None
    if epoch < 0 or "eval_top1" not in number:
        return None, None
    for key in (k for k in number if k.endswith(("top1", "top5"))):
        problem = percent_problem(number[key], key)
        if problem:
            return None, f"{problem}: epoch {epoch} not entered"
    return EpochRecord(epoch=epoch, train_loss=number.get("train_loss", math.nan),
                       train_accuracy=number.get("train_top1", math.nan),
                       test_accuracy=number["eval_top1"], lr=number.get("lr")), None


def _console(root: Path, state: StateRecord, refused: list) -> dict:
    """First batch and epoch-0 running loss from a saved console log, if the folder holds one."""
    candidates = sorted(p for pattern in CONSOLE for p in root.glob(pattern))
    for path in candidates[:MAX_CONSOLE_FILES]:
        problem = link_problem(path)
        if problem or not path.is_file():
            refused += [problem] if problem else []
            continue
        curve = _epoch0_curve(read_lines(path, follow_links=False))
        if curve.seen:
            points = curve.points()
            state.intra_epoch = [(step, steps, running, None) for step, steps, _, running in points]
            if points[0][0] == 0:
                state.first_batch_loss = points[0][2]
            return {"console_log": str(path), "first_batch_loss": "from the console log "
                    "(timm prints 3 significant digits)",
                    "intra_epoch_curve_cut": [curve_cut("state 0", curve)] if curve.cut else []}
    return {"console_log": None, "first_batch_loss": "not in timm's summary.csv, and no console "
            "log (*.log, *.txt) with Train: lines in the folder"}


def _epoch0_curve(lines: LogLines) -> EvenCurve:
    curve = EvenCurve()
    for _, text in lines:
        m = _TRAIN.search(text)
        if m and m[1] == "0":
            curve.add((int(m[2]), int(m[3]), float(m[4]), float(m[5]) if m[5] else float(m[4])))
    return curve


def _args(path: Path, refused: list) -> tuple[dict, Optional[str], Listed]:
    """The arguments of args.yaml, or why there are none: a link (also listed in ``refused``),
    too large, an alias bomb."""
    cut = Listed()
    link = link_problem(path)
    if link:
        refused.append(link)
        return {}, f"{link}: no run arguments", cut
    if not path.exists():
        return {}, f"{path.name} missing: no run arguments", cut
    try:
        text = read_regular(path, MAX_ARGS_BYTES, follow_links=False, what="an args.yaml",
                            hint="timm writes about 5 KB")
        data = _load_yaml(text.decode("utf-8", errors="replace"))
    except LogError as exc:
        return {}, f"{exc}: no run arguments", cut
    except (yaml.YAMLError, RecursionError) as exc:
        return {}, f"{path.name} unreadable ({type(exc).__name__}): no run arguments", cut
    except _Refused as exc:
        return {}, f"{path.name} refused: {exc}: no run arguments", cut
    if not isinstance(data, dict):
        return {}, f"{path.name} holds {type(data).__name__}, not a mapping: no run arguments", cut
    args: dict = {}
    for key, value in data.items():
        if not add_argument(args, str(key), value, cut):
            break
    return args, None, cut


class _Refused(Exception):
    """A YAML document the harness does not expand (alias bomb, recursion, too deep)."""


def _load_yaml(text: str):
    """yaml.safe_load, but the node graph is measured first: aliases are shared nodes that
    become copies wherever the data is written out (report.json), so a few hundred bytes of
    aliases can stand for billions of values. Those over MAX_ARGS_NODES are refused."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded(node, {}, 0)
        if size > MAX_ARGS_NODES:
            raise _Refused(f"its YAML aliases expand to over {MAX_ARGS_NODES:,} values")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _expanded(node: yaml.Node, sizes: dict, depth: int) -> int:
    """How many values ``node`` holds with every alias copied out (counting stops past the cap)."""
    if id(node) in sizes:
        if sizes[id(node)] is None:
            raise _Refused("a YAML alias refers to itself (a recursive structure)")
        return sizes[id(node)]
    if depth > MAX_ARGS_DEPTH:
        raise _Refused(f"nested deeper than {MAX_ARGS_DEPTH} levels")
    sizes[id(node)] = None
    total = 1
    children = node.value if isinstance(node, yaml.SequenceNode) else (
        [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else [])
    for child in children:
        total += _expanded(child, sizes, depth + 1)
        if total > MAX_ARGS_NODES:
            break
    sizes[id(node)] = total
    return total
