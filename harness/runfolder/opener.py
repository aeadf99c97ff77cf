"""Opening a run to judge: a folder (the research group's layout, a layout a lab declared, or a
run of the harness's store), or a run record the engine made; each opened run is kept by its run
id, so the suite finds it again from the record ``harness.run(case)`` returned
(:func:`judgement_of`). A folder's layout names its reader (:data:`READERS`): how its log and
claim are read.
"""
from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Optional

from harness.record import RunRecord, StateRecord
from harness.runfolder.claims import declared_claims, research_claims, spec_claims
from harness.runfolder.declaration import RunLayout
from harness.runfolder.evaluation import Evaluator
from harness.runfolder.layout import (FolderLayout, RunFolderError, StateFiles, file_problem,
                                      find_layout, init_candidates, some, tried_logs)
from harness.runfolder.run import PrunedRun

_RUNS: dict = {}


def open_folder(folder: Path, *, log: Optional[Path] = None, model: Optional[str] = None,
                dataset: Optional[str] = None, data_root: Optional[Path] = None,
                device: str = "cpu", log_option: str = "--harness-from-log",
                patterns=None, layout: Optional[RunLayout] = None) -> PrunedRun:
    """The run saved in ``folder``; ``log`` its stdout log when not in the folder (``log_option``:
    how the caller's user passes it, for the message); ``model`` and ``dataset`` (import paths or
    names) to evaluate its stored states; ``patterns`` the project's declared log format, tried
    on a research-layout log when the research format does not read its arguments; ``layout`` the
    folder's declared layout (default: a run of the harness's store, else the research group's)."""
    folder = Path(folder)
    layout = find_layout(folder, layout)
    if layout.kind == "store":
        given = [name for name, value in (("the log", log), ("the model", model),
                                          ("the dataset", dataset)) if value is not None]
        if given:
            raise RunFolderError(f"{folder}: a run of the harness's store names its own model, "
                                 f"data and records (no stdout log); drop {', '.join(given)}")
        run = _store_folder(folder, Evaluator(None, None, data_root, device))
    else:
        reader = READERS[layout.spec.reader]
        run = reader(layout, (log, log_option, patterns), model,
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

    problems: list = []
    candidates = [Path(given)] if given is not None else tried_logs(layout.logs, problems)
    formats = ("research", None) if patterns is not None else ("research",)   # None: declared
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
                         f"({some(problems, 'more problems') or 'no .log/.txt/.out file in the folder'}); "
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


# --- a declared layout ---------------------------------------------------------------------------
def _declared(layout: FolderLayout, log: tuple, model: Optional[str],
              evaluator: Evaluator) -> PrunedRun:
    """A lab's folder read by its declaration: the claim declared or stated by a log line, the
    remaining lines its pattern finds, the init file it names inside the folder."""
    spec = layout.spec
    lab, log_path = _lab_log(layout, *log)
    claims = _merged_claims(spec, lab)
    beyond = [i for i in layout.indices() if claims.states is not None and i > claims.states]
    if beyond:
        raise RunFolderError(f"{layout.folder}: state {beyond[0]} is stored, but the run claims "
                             f"{claims.states} pruned states ({claims.sources['states']}); declare "
                             f"the states it ran")
    init = _declared_init(layout)
    record = _declared_record(layout, lab, log_path, claims)
    notes = [spec.describe(), f"log {log_path}" if log_path else "no log read"]
    notes += list(lab.problems if lab else ()) + layout.skipped
    # the prunable weights are the files' (the declaration's selection); the model evaluates
    return PrunedRun(layout, claims, record, log=record if lab else None, init=init,
                     evaluator=evaluator, notes=notes)


def _lab_log(layout: FolderLayout, given: Optional[Path], option: str, patterns=None) -> tuple:
    """The log the declaration reads (None when it declares nothing to read from one and no log
    is found), and its path. ``patterns`` (the project's log format) are not needed: the
    declaration's own ``remaining`` and ``claim`` patterns read the lab's log."""
    from harness.logs import LogError
    from harness.runfolder.lablog import find_log, read_lab_log

    spec = layout.spec
    if spec.remaining is None and spec.claim_line is None:
        if given is not None:
            raise RunFolderError(f"{option} {given}: the layout declared in {spec.source} reads "
                                 f"nothing from a log; declare remaining: REGEX or claim: REGEX, "
                                 f"or drop {option}")
        return None, None
    problems: list = []
    for path in tried_logs(find_log(layout.folder, spec, given, layout.logs), problems):
        try:
            lab = read_lab_log(path, spec, follow_links=given is not None)
        except LogError as exc:
            problems.append(str(exc))
            continue
        if lab.remaining or lab.claim or len(layout.logs) == 1 or given or spec.log:
            return lab, path
        problems.append(f"{path}: no line matches the declared remaining or claim pattern")
    found = some(problems, "more problems") or "no .log/.txt/.out file in the folder"
    raise RunFolderError(f"{layout.folder}: no log of the run that its declared remaining or claim "
                         f"pattern reads ({found}); "
                         f"pass it with {option} LOG, or declare log: NAME")


def _merged_claims(spec: RunLayout, lab):
    """The declared claim and the one a log line states; a field both give differently is refused
    (neither is chosen silently)."""
    declared = spec.declared_claim
    if spec.claim_line is not None and lab.claim_line is None:
        raise RunFolderError(f"{spec.source}: claim {spec.claim_line.pattern!r} matches no line of "
                             f"{lab.path}; correct the pattern, or drop it and declare the claim")
    stated = lab.claim if lab else {}
    for key, value in stated.items():
        if key in declared and declared[key] != value:
            raise RunFolderError(f"{spec.source} declares {key}={declared[key]!r} but {lab.path} "
                                 f"line {lab.claim_line} states {key}={value!r}; drop the "
                                 f"declared {key} or correct it")
    sources = {**(lab.claim_sources() if lab else {}),
               **{k: f"declared in {spec.source}" for k in declared}}
    return declared_claims({**stated, **declared}, sources, spec.source)


def _declared_init(layout: FolderLayout) -> Optional[Path]:
    spec = layout.spec
    if spec.init is None:
        return None
    path = layout.folder / spec.init
    refused = file_problem(layout.folder, path, "the run folder")
    if refused:
        raise RunFolderError(f"init {spec.init} (declared in {spec.source}): {refused}")
    if not path.is_file():
        raise RunFolderError(f"{layout.folder}: no init file {spec.init} in it (declared in "
                             f"{spec.source}); declare the init file the run started from, or "
                             f"drop init")
    return path


def _declared_record(layout: FolderLayout, lab, log_path: Optional[Path], claims) -> RunRecord:
    """A record of the folder: its states pointing at their files, each with the remaining lines
    its log printed (the checks read them as they read the research log's)."""
    states = []
    indices = sorted(set(layout.states) | set(lab.remaining if lab else ())
                     | set(lab.refused if lab else ()))
    for index in indices:
        files = layout.states.get(index)
        state = StateRecord(index=index, checkpoint=str(files.final) if files else None)
        state.extra["best_file"] = str(files.best) if files and files.best else None
        state.extra["remaining_weights"] = list(lab.remaining.get(index, [])) if lab else []
        state.extra["remaining_refused"] = list(lab.refused.get(index, [])) if lab else []
        states.append(state)
    name = f"{layout.folder.resolve()}\n{layout.spec.lines}\n{log_path}"
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()
    notes = {"run_folder": str(layout.folder), "log": str(log_path) if log_path else None,
             "layout": layout.spec.describe(), "claim_sources": dict(claims.sources),
             "folder_entries_skipped": list(layout.skipped),
             "log_problems": list(lab.problems) if lab else []}
    return RunRecord(run_id=f"run-{digest[:12]}", source=f"run:{layout.spec.name}", dataset="",
                     num_classes=0, model="", spec={"claim": _claim_dict(claims)},
                     states=states, environment={"path": str(layout.folder)}, notes=notes)


def _claim_dict(claims) -> dict:
    return {"method": claims.method, "scope": claims.scope, "rate": claims.rate,
            "final_sparsity": claims.final_sparsity, "states": claims.states,
            "nested": claims.nested, "rewind": claims.rewind}


READERS = {"research": _research, "declared": _declared}
