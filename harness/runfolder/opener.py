"""Opening a run to judge: a folder (the research group's layout, or a run of the harness's
store), or a run record the engine made; each opened run is kept by its run id, so the suite
finds it again from the record ``harness.run(case)`` returned (:func:`judgement_of`).
"""
from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Optional

from harness.record import RunRecord, StateRecord
from harness.runfolder.claims import research_claims, spec_claims
from harness.runfolder.evaluation import Evaluator
from harness.runfolder.layout import (FolderLayout, RunFolderError, StateFiles, file_problem,
                                      find_layout, init_candidates)
from harness.runfolder.run import PrunedRun

_RUNS: dict = {}


def open_folder(folder: Path, *, log: Optional[Path] = None, model: Optional[str] = None,
                dataset: Optional[str] = None, data_root: Optional[Path] = None,
                device: str = "cpu", log_option: str = "--harness-from-log",
                patterns=None) -> PrunedRun:
    """The run saved in ``folder``; ``log`` its stdout log when not in the folder (``log_option``:
    how the caller's user passes it, for the message); ``model`` and ``dataset`` (import paths or
    names) to evaluate its stored states; ``patterns`` the project's declared log format, tried
    on the log when the research format does not read its arguments."""
    folder = Path(folder)
    layout = find_layout(folder)
    if layout.kind == "store":
        given = [name for name, value in (("the log", log), ("the model", model),
                                          ("the dataset", dataset)) if value is not None]
        if given:
            raise RunFolderError(f"{folder}: a run of the harness's store names its own model, "
                                 f"data and records (no stdout log); drop {', '.join(given)}")
        run = _store_folder(folder, Evaluator(None, None, data_root, device))
    else:
        run = _research(layout, (log, log_option, patterns), model,
                        Evaluator(dataset, model, data_root, device))
    _RUNS[run.record.run_id] = run
    return run


def judgement_of(record: RunRecord, *, device: str = "cpu",
                 data_root: Optional[Path] = None) -> PrunedRun:
    """The opened run of ``record``; an engine record is opened from its store files (again
    when they changed: a run trained anew keeps its key)."""
    known = _RUNS.get(record.run_id)
    if known is None or _digests(known.record) != _digests(record):
        known = _RUNS[record.run_id] = store_run(record, Evaluator(None, None, data_root, device))
    return known


def _digests(record: RunRecord) -> tuple:
    return tuple((s.checkpoint, tuple(sorted(s.sha256.items()))) for s in record.states)


def open_log(record: RunRecord) -> PrunedRun:
    """A research log alone (``--harness-from-log`` with the pruning suite): its states judged
    on what the log reports."""
    args = record.spec.get("args") or {}
    layout = FolderLayout(Path(str(record.environment.get("path") or ".")).parent, "log")
    run = PrunedRun(layout, research_claims(args), record, log=record,
                    heads=record.notes.get("heads"))
    _RUNS[record.run_id] = run
    return run


# --- the harness's own store ---------------------------------------------------------------
def store_run(record: RunRecord, evaluator: Evaluator) -> PrunedRun:
    states = {s.index: StateFiles(s.index, checkpoint=Path(s.checkpoint)) for s in record.states
              if s.checkpoint}
    folder = Path(record.states[-1].checkpoint).parent if states else Path(".")
    layout = FolderLayout(folder, "store", states)
    claims = spec_claims(record)
    return PrunedRun(layout, claims, record, evaluator=evaluator, heads=_store_heads(record))


def _store_heads(record: RunRecord) -> dict:
    """Head counts of the model a store run trained (built on the meta device)."""
    from harness.models import ModelError, create_skeleton
    from harness.runfolder.channels import model_heads

    try:
        built = create_skeleton(record.model, record.num_classes, record.in_chans or 3,
                                record.image_size)
    except ModelError as exc:
        raise RunFolderError(f"run {record.run_id}: {exc}") from None
    return model_heads(built)


def _store_folder(folder: Path, evaluator: Evaluator) -> PrunedRun:
    from harness.store import RunStore

    record = RunStore(folder.parent).complete(folder.name)
    if record is None:
        raise RunFolderError(f"{folder}: a run of the harness's store without an intact "
                             f"record.json (still running, or damaged); judge it once its "
                             f"session has stored every state")
    for state in record.states:         # state 0 may be the dense run's, stored beside it
        for name in ("checkpoint", "masks"):
            value = getattr(state, name)
            refused = file_problem(folder.parent, Path(value), "the runs store") if value else None
            if refused:
                raise RunFolderError(f"state {state.index} {name}: {refused}")
    return store_run(replace(record, source="run:store"), evaluator)


# --- the research group's layout ---------------------------------------------------------------
def _research(layout: FolderLayout, log: tuple, model: Optional[str],
              evaluator: Evaluator) -> PrunedRun:
    log_record, log_path = _log_of(layout, *log)
    args = log_record.spec.get("args") or {}
    claims = research_claims(args)
    init = next((p for p in init_candidates(layout.folder, args.get("init"), args.get("save_dir"))
                 if p.is_file() or p.is_symlink()), None)      # a link: refused when read
    names, heads = (_model_layout(model, log_record, evaluator) if model
                    else (None, log_record.notes.get("heads")))
    record = _record(layout, log_record, log_path)
    return PrunedRun(layout, claims, record, log=log_record, init=init, heads=heads, names=names,
                     evaluator=evaluator, notes=[f"log {log_path}"] + layout.skipped)


def _log_of(layout: FolderLayout, given: Optional[Path], option: str, patterns=None) -> tuple:
    from harness.logs import LogError, parse_log

    candidates = [Path(given)] if given is not None else layout.logs
    formats = ("research", None) if patterns is not None else ("research",)   # None: declared
    problems = []
    for path in candidates:
        for fmt in formats:
            try:
                record = parse_log(path, fmt, patterns=patterns)
            except LogError as exc:
                problems.append(str(exc))
                continue
            if (record.spec.get("args") or {}).get("struct") is not None:
                return record, path
            problems.append(f"{path}: no {'Namespace(...) line' if fmt else 'declared arguments'} "
                            f"with the run's arguments (struct, rate)")
    raise RunFolderError(f"{layout.folder}: no stdout log of the run with its arguments "
                         f"({'; '.join(problems) or 'no .log/.txt/.out file in the folder'}); "
                         f"pass it with {option} LOG")


def _model_layout(model: str, log_record: RunRecord, evaluator: Evaluator) -> tuple:
    """Prunable weight names and head counts of the model the run trained (built on the meta
    device: no weights)."""
    from harness.models import ModelError, create_skeleton
    from harness.prune.masks import MaskSet
    from harness.runfolder.channels import model_heads

    data = evaluator.dataset() if evaluator.dataset_name else None
    classes, chans, size = ((data.num_classes, data.channels, data.image_size) if data
                            else (log_record.num_classes or 10, 3, None))
    try:
        built = create_skeleton(model, classes, chans, size)
    except ModelError as exc:
        raise RunFolderError(f"--harness-from-run-model: {exc}") from None
    return MaskSet.dense(built).names, model_heads(built)


def _record(layout: FolderLayout, log_record: RunRecord, log_path: Path) -> RunRecord:
    """The log's record, its states pointing at the stored files (a state stored but not in the
    log is added with no epochs)."""
    states = {s.index: StateRecord.from_dict(s.to_dict()) for s in log_record.states}
    for index, files in layout.states.items():
        state = states.setdefault(index, StateRecord(index=index))
        state.checkpoint = str(files.final)
        state.extra["best_file"] = str(files.best) if files.best else None
    name = f"{layout.folder.resolve()}\n{log_record.run_id}"     # a folder's name need not be UTF-8
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()
    notes = dict(log_record.notes, run_folder=str(layout.folder), log=str(log_path),
                 folder_entries_skipped=list(layout.skipped))
    return replace(log_record, run_id=f"run-{digest[:12]}", source="run:research",
                   states=[states[i] for i in sorted(states)], notes=notes)
