"""The report document (report.json's schema): verdicts, profile, environment, timings, counts."""
from __future__ import annotations

import time
from typing import Iterable, Optional

from harness.expect import Verdict
from harness.record import RunRecord

SCHEMA = "harness.report/1"


def _run_summary(case_id: str, record: RunRecord) -> dict:
    states = []
    for s in record.states:
        states.append({"state": s.index, "best_accuracy": s.best_accuracy,
                       "final_accuracy": s.final_accuracy, "sparsity": s.sparsity,
                       "epochs": len(s.epochs), "seconds": s.seconds,
                       "images_per_s": s.images_per_s, "peak_memory_mb": s.peak_memory_mb,
                       "checkpoint": s.checkpoint,
                       "test_curve": [e.test_accuracy for e in s.epochs], **_pruning_summary(s)})
    return {"case": case_id, "run_id": record.run_id, "source": record.source,
            "model": record.model, "dataset": record.dataset, "init": record.init,
            "reused": bool(record.notes.get("reused")), "spec": record.spec,
            "init_audit": record.init_audit, "environment": record.environment, "states": states,
            "complete": record.complete, "log": _log_summary(record)}


_LOG_NOTES = ("log_path", "lines_total", "lines_understood", "lines_not_understood",
              "not_understood_examples", "undecodable_lines", "unfinished_last_line",
              "epochs_without_test_accuracy", "dataset_from", "pretrained_claim_from",
              "accuracy_scale", "phases")


def _log_summary(record: RunRecord) -> Optional[dict]:
    """How a record parsed from a training log was read (None for the engine's runs)."""
    if not record.source.startswith("log:"):
        return None
    return {k: record.notes[k] for k in _LOG_NOTES if k in record.notes}


def _pruning_summary(state) -> dict:
    """A pruning state's schedule, stored-model accuracy, channels left and RSST coefficient."""
    if state.target_sparsity is None:
        return {}
    left: dict = {}
    for family in state.structure.values():
        unit = left.setdefault(family["unit"], [0, 0])
        unit[0] += family["left"]
        unit[1] += family["total"]
    return {"method": state.extra.get("method"), "target_sparsity": state.target_sparsity,
            "stored_accuracy": state.stored_accuracy, "channels_left": left,
            "penalty_coefficient": state.penalty[-1]["coefficient_end"] if state.penalty else None}


def build_report(*, profile: str, verdicts: Iterable[Verdict], tests: list, records: dict,
                 environment: dict, started: float, finished: Optional[float] = None,
                 options: Optional[dict] = None, exit_status: Optional[int] = None,
                 session_id: Optional[str] = None) -> dict:
    finished = finished or time.time()
    verdicts = list(verdicts)
    failed = [v for v in verdicts if not v.passed]
    outcomes: dict = {}
    for t in tests:
        outcomes[t["outcome"]] = outcomes.get(t["outcome"], 0) + 1
    return {
        "schema": SCHEMA,
        "session_id": session_id,
        "profile": profile,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(finished)),
        "timings": {"started": started, "finished": finished,
                    "duration_s": round(finished - started, 3)},
        "counts": {"verdicts": len(verdicts), "passed": len(verdicts) - len(failed),
                   "failed": len(failed), "tests": outcomes},
        "exit_status": exit_status,
        "options": options or {},
        "environment": environment,
        "verdicts": [v.to_dict() for v in sorted(verdicts, key=lambda v: (v.passed, v.id))],
        "tests": tests,
        "runs": [_run_summary(case_id, rec) for case_id, rec in records.items()],
    }
