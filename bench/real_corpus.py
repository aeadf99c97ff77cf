"""The real-artifact corpus as a table: per file of tests/data/real, its source, the truth read by
hand (truth.json) and what the harness reads, side by side, with whether they agree.

    python -m bench.real_corpus [--out FILE.json]

Logs are read as ``harness log`` reads them (detected, or with the declared patterns their truth
entry names); weights as ``harness inspect`` judges them. Prints a markdown table; with ``--out``
also writes the rows as JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Union

from harness.forensics.inspection import inspect_checkpoint
from harness.logs import LogError, parse_log
from harness.logs.declared import LogPatterns
from harness.record import RunRecord
from harness.start import epoch_zero
from harness.storage import write_json

REAL = Path(__file__).resolve().parent.parent / "tests" / "data" / "real"
COLUMNS = ("file", "source", "truth", "harness", "agree")


def _first_evaluation(trained: Optional[list]) -> str:
    if trained is None:
        return "epochs not counted"
    return f"first eval after {trained[0]} epoch{'s' if trained[0] != 1 else ''}"


def _log_truth(truth: dict) -> str:
    if truth.get("refused"):
        return "not a training log"
    parts = [f"{truth['model']} on {truth['dataset']}"] if "dataset" in truth else []
    for state in truth.get("states", [truth]):
        parts.append(f"best {state['best_accuracy']:g}, {_first_evaluation(state['epochs_trained_at_evaluation'])}")
    return "; ".join(parts) + f"; complete {'yes' if truth['complete'] else 'no'}"


def _read(path: Path, truth: dict) -> Union[RunRecord, LogError]:
    """The log read as ``harness log`` reads it (with the declared patterns its truth entry
    names), or why it was refused."""
    patterns = LogPatterns.from_lines(truth["patterns"]) if "patterns" in truth else None
    try:
        return parse_log(path, patterns=patterns)
    except LogError as exc:
        return exc


def _log_harness(read: Union[RunRecord, LogError], truth: dict) -> str:
    if isinstance(read, LogError):
        return "refused: cannot tell its format" if "cannot tell its format" in str(read) else f"refused: {read}"
    parts = [f"{read.model} on {read.dataset or '?'}"] if "dataset" in truth else []
    for state in read.states:
        trained = None if state.extra.get("epochs_unknown") else [e.epoch + 1 for e in state.epochs]
        parts.append(f"best {state.best_accuracy:g}, {_first_evaluation(trained)}")
    complete = "yes" if read.complete else ("not claimed" if not truth.get("completeness_read", True)
                                              else "no")
    return "; ".join(parts) + f"; complete {complete}"


def _state_agrees(state, want: dict) -> bool:
    trained = want["epochs_trained_at_evaluation"]
    if abs(state.best_accuracy - want["best_accuracy"]) > 5e-3:
        return False
    return trained is None or ([e.epoch for e in state.epochs] == [t - 1 for t in trained]
                               and (epoch_zero(state) is not None) is want["evaluation_after_first_epoch"])


def _log_agrees(read: Union[RunRecord, LogError], truth: dict) -> bool:
    if truth.get("refused") or isinstance(read, LogError):
        return bool(truth.get("refused")) and isinstance(read, LogError) and "cannot tell its format" in str(read)
    states = truth.get("states", [truth])
    facts = all(getattr(read, f) == truth[f] for f in ("dataset", "model", "num_classes") if f in truth)
    return (facts and len(states) == len(read.states) and all(map(_state_agrees, read.states, states))
            and read.complete is (truth["complete"] and truth.get("completeness_read", True)))


def row(name: str, truth: dict) -> dict:
    """One corpus entry: what truth.json says and what the harness reads."""
    path = REAL / name
    source = truth["source"] + (f" {truth['version']}" if "version" in truth else f" @ {truth['commit'][:7]}")
    if truth["kind"] == "weights":
        verdict = inspect_checkpoint(path).verdict
        return {"file": name, "source": source, "truth": truth["truth"], "harness": verdict,
                "agree": verdict == truth["truth"]}
    read = _read(path, truth)
    return {"file": name, "source": source, "truth": _log_truth(truth), "harness": _log_harness(read, truth),
            "agree": _log_agrees(read, truth)}


def table(rows: list[dict]) -> str:
    def cell(value) -> str:
        text = ("yes" if value else "**no**") if isinstance(value, bool) else str(value)
        return text.replace("|", "\\|")
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(r[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON to this file")
    args = parser.parse_args(argv)
    truths = json.loads((REAL / "truth.json").read_text())
    rows = [row(name, truth) for name, truth in truths.items()]
    print(table(rows))
    agreed = sum(r["agree"] for r in rows)
    print(f"\n{agreed} of {len(rows)} entries agree with the truth read by hand")
    if args.out:
        write_json(args.out, {"rows": rows, "agreed": agreed})
    return 0 if agreed == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
