"""A pruning run to judge from its artifacts: its stored states, claims, log and init file.

:class:`PrunedRun` answers what the checks (:mod:`harness.runfolder.findings`) ask of a run,
whatever its layout: the state's stored weights, the claimed target, what the log says, the
init weights, the rewind point, the penalty measure, the evaluated accuracy. Every answer that
cannot be given is a string saying why (the check then is not judged and says so). The checks of
all states are computed in one pass, holding two states' tensors at a time, and cached.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Union

import torch

from harness.runfolder.channels import key_families, pools
from harness.runfolder.claims import Pools, RunClaims
from harness.runfolder.findings import (CHECKS, NotJudged, StateView, log_line, log_sparsity,
                                        weights_penalty)
from harness.runfolder.layout import FolderLayout, RunFolderError, file_problem
from harness.runfolder.stored import (DeclaredPrunable, StoredState, read_research_state,
                                      read_store_state, read_weights)

Answer = Union[dict, str]


class PrunedRun:
    """One run: ``layout`` (its files), ``claims``, ``record`` (what ``harness.run`` returns),
    ``log`` (the parsed log's record, research layout), ``init`` (the init file, when one)."""

    def __init__(self, layout: FolderLayout, claims: RunClaims, record, *, log=None,
                 init: Optional[Path] = None, heads: Optional[dict] = None, names: Optional[list] = None,
                 evaluator=None, notes: Optional[list] = None) -> None:
        self.layout, self.claims, self.record, self.log = layout, claims, record, log
        self.init, self.heads, self.evaluator = init, dict(heads or {}), evaluator
        self.names = names
        self.notes = list(notes or [])
        self._families = self._init = None
        self._outcomes: Optional[dict] = None
        self._shapes: dict = {}

    @property
    def source(self) -> str:
        return f"{self.record.source} {self.layout.folder}"

    def shown(self, path: Path) -> str:
        path = Path(path)
        return path.name if path.parent == self.layout.folder else str(path)

    # --- stored states --------------------------------------------------------------------------
    def stored(self, index: int) -> StoredState:
        files = self.layout.states[index]
        if self.layout.kind == "store":
            state = self.record.state(index)
            stored = read_store_state(files.checkpoint, Path(state.masks) if state.masks else None)
        else:
            stored = read_research_state(files.final, self.names, self._select())
        self.names = self.names or stored.names
        self._shapes = self._shapes or {n: tuple(stored.weights[n].shape) for n in stored.names}
        return self._same_shapes(stored)

    def best_state(self, index: int) -> Optional[StoredState]:
        files = self.layout.states.get(index)
        if files is None or files.best is None or files.best == files.final:
            return None
        return self._same_shapes(read_research_state(files.best, self.names, self._select()))

    def _select(self):
        """How a declared layout picks the prunable weights of its files (None: the research
        group's attention and MLP weights)."""
        if self.layout.kind != "declared":
            return None
        return DeclaredPrunable(self.layout.spec.prunable)

    def _same_shapes(self, stored: StoredState) -> StoredState:
        problem = _shape_problem(stored.weights, self._shapes, stored.path)
        if problem:
            raise RunFolderError(problem)
        return stored

    def outcomes(self, check: str) -> list:
        """Every state's outcome of ``check`` (Finding, NotJudged), in state order."""
        if check not in CHECKS:
            raise KeyError(f"unknown check {check!r}; known: {', '.join(CHECKS)}")
        if self._outcomes is None:
            self._outcomes = self._judge_all()
        return [o for o in self._outcomes.get(check, []) if o is not None]

    def _judge_all(self) -> dict:
        if self.layout.kind == "log":
            return self._judge_log()
        found: dict = {name: [] for name in CHECKS}
        previous, last = None, None
        for index in self.layout.indices():
            stored = self.stored(index)
            view = StateView(self, index, stored, previous if last == index - 1 else None)
            for name, check in CHECKS.items():
                found[name].append(check(view))
            previous, last = stored, index
        for index, why in self._unstored():
            for name in CHECKS:
                found[name].append(NotJudged(name, index, why))
        if not self.layout.states:
            for name in CHECKS:
                found[name].append(NotJudged(name, 0, f"{self.layout.folder} holds no stored state"))
        return found

    def _unstored(self) -> list:
        """(state, why) of each state the log names whose file the folder does not store (or
        stores as a link, not followed): not judged, and said."""
        if self.layout.kind not in ("research", "declared"):
            return []
        said = self.layout.unjudged
        indices = {s.index for s in self.record.states} | set(said)
        return [(i, said.get(i) or f"state {i} is in the log, but {self.layout.folder} stores "
                                   f"no file of it") for i in sorted(indices - set(self.layout.states))]

    def _judge_log(self) -> dict:
        """A log alone: each state's sparsity as the log reports it; the rest needs the files."""
        why = ("a log stores no weights: judge the run's save folder with --harness-from-run DIR")
        found: dict = {name: [] for name in CHECKS}
        for state in self.log.states:
            view = StateView(self, state.index, None)
            for name in CHECKS:
                found[name].append(log_sparsity(view) if name == "sparsity" else
                                   NotJudged(name, state.index, why))
        return found

    # --- what the checks ask ------------------------------------------------------------------
    def families(self) -> Union[list, str]:
        if self._families is None:
            fams, unknown = key_families(self.names, self._shapes, self.heads)
            self._families = fams if not unknown else (
                f"the head count of {', '.join(unknown[:3])} is unknown: pass the model with "
                f"--harness-from-run-model, or a log that prints 'Keeping k/H heads:'")
        return self._families

    def target(self, index: int):
        if not self.claims.per_state:
            return self.claims.target(index, self._weights_pool())
        if self.names is None:          # a log alone: the pools' sizes are not known
            return self.claims.target_without_layout(index, sum(self.heads.values()))
        fams = self.families()
        if isinstance(fams, str):
            return fams
        return self.claims.target(index, pools(fams, self._shapes, self.names))

    def _weights_pool(self) -> Optional[Pools]:
        """The prunable weights' count and tensors, once a state was read (the rounding of a
        declared schedule)."""
        if not self.names or not self._shapes:
            return None
        return Pools(total=sum(math.prod(self._shapes[n]) for n in self.names), layers=len(self.names))

    def logged_sparsity(self, index: int) -> Union[tuple, str]:
        if self.layout.kind == "store":
            state = self.record.state(index)
            return state.sparsity, [f"state{index}.json reports sparsity {state.sparsity:.2f}%"]
        if self.log is None and self.layout.kind == "declared":
            return ("no remaining pattern is declared (remaining: REGEX): no log line states the "
                    "state's sparsity")
        if self.log is None:
            return "no log of the run was read"
        return _log_claim(self.log, index, self.claims.log_rule)

    def init_weights(self) -> Answer:
        if self._init is None:
            self._init = self._read_init()
        return self._init

    def _read_init(self) -> Answer:
        if self.layout.kind == "store":
            return _engine_start(self.record, self.names)
        if self.init is None and self.layout.kind == "declared":
            return "no init file is declared (init: FILE, a file in the run folder)"
        if self.init is None:
            named = ((self.record.spec or {}).get("args") or {}).get("init")
            return (f"the init file the log's arguments name ({named!r}) was not found where the "
                    f"run ran nor in the run folder (a log's absolute or '..' path is looked for "
                    f"by its name in the folder only: a log's init is a claim)")
        inside = Path(self.init).is_relative_to(self.layout.folder)
        refused = file_problem(self.layout.folder, self.init) if inside else None
        return refused or self._read_file(self.init)

    def _read_file(self, path: Path) -> Answer:
        """The prunable tensors of an init or rewind file whose path was checked
        (:func:`file_problem`), or why they are not read (unreadable, another model's shapes)."""
        try:
            weights = read_weights(path, self.names)
        except RunFolderError as exc:
            return str(exc)
        return _shape_problem(weights, self._shapes, path) or weights

    def init_source(self) -> str:
        if self.layout.kind == "store":
            init = (self.record.spec or {}).get("init")
            return str(init) if init else f"the model seed {self.record.spec.get('seed')} builds"
        return str(self.init)

    def rewind_weights(self, index: int) -> Answer:
        rewind = self.claims.rewind
        if rewind == "init":
            return self.init_weights()
        if rewind == "none":
            return "the run claims no rewind: each state goes on from the previous one"
        path = self._rewind_file()
        refused = file_problem(self.layout.folder, path)
        if refused:
            return refused
        if not path.is_file():
            return f"the rewind point {rewind} is not stored in {self.layout.folder}"
        return self._read_file(path)

    def _rewind_file(self) -> Path:
        if self.layout.kind == "store":
            return self.layout.folder / "rewind.safetensors"
        epoch = self.claims.rewind.partition(":")[2]
        return self.layout.folder / f"epoch_{epoch}.pth.tar"

    def rewind_source(self, index: int) -> str:
        return self.init_source() if self.claims.rewind == "init" else str(self._rewind_file())

    def penalty_measure(self, view: StateView) -> Answer:
        if self.layout.kind == "research":
            return weights_penalty(self, view.stored)
        return _recorded_penalty(self.record.state(view.index), view)

    def evaluate(self, index: int) -> Union[tuple, str]:
        from harness.runfolder.evaluation import evaluate_state

        return evaluate_state(self, index)


def _shape_problem(tensors: dict, shapes: dict, path: Path) -> Optional[str]:
    """Why ``tensors`` cannot be set against the run's stored states: one has another shape."""
    for name, shape in shapes.items():
        if name in tensors and tuple(tensors[name].shape) != shape:
            return (f"{path}: {name} is {tuple(tensors[name].shape)}, but {shape} in the run's "
                    f"first stored state; the files are not of one model")
    return None


def _log_claim(log, index: int, rule: str) -> Union[tuple, str]:
    """The sparsity the log states for state ``index`` (100 - ``Remaining weights``) and the
    lines around it, by ``rule``; :class:`RefusedLines` when the lines it reads were refused."""
    state, before = log.state(index), log.state(index - 1)
    refused = _refused_lines(state, before, index, rule)
    if refused:
        return refused
    start = [r for r in (state.extra.get("remaining_weights", []) if state else []) if r["at_start"]]
    step = [r for r in (before.extra.get("remaining_weights", []) if before else [])
            if r["after_summary"]]
    chosen = step[:1] if rule == "pruning_step" and index > 0 else start[:1]
    if not chosen:
        return f"the log prints no {_remaining_words(log)} line for state {index}"
    lines = [log_line(r) for r in chosen + [r for r in step + start if r is not chosen[0]]]
    return 100.0 - chosen[0]["remaining"], lines


def _refused_lines(state, before, index: int, rule: str) -> Optional["RefusedLines"]:
    """The remaining lines of the log that ``rule`` reads for state ``index`` whose value was
    refused (an impossible percentage): the state's log is judged failing on them."""
    if rule == "pruning_step" and index > 0:
        found = [r for r in (before.extra.get("remaining_refused", []) if before else [])
                 if r.get("after_summary")]
    else:
        found = [r for r in (state.extra.get("remaining_refused", []) if state else [])
                 if not r.get("after_summary")]
    return RefusedLines([f"log line {r['line']}: refused ({r['why']})" for r in found]) if found else None


class RefusedLines(list):
    """The log lines that state a state's sparsity and were refused (see :func:`_log_claim`)."""


def _remaining_words(log) -> str:
    return "'Remaining weights'" if log.source.startswith("log:") else "remaining (declared pattern)"


def _engine_start(record, names: list) -> Answer:
    """The weights the engine started the run from: the spec's seed, then its init file."""
    from harness.models import ModelError, create_model, load_init

    torch.manual_seed(int(record.spec.get("seed", 0)))
    try:
        model = create_model(record.model, record.num_classes, record.in_chans or 3, record.image_size)
        if record.spec.get("init"):
            load_init(model, record.spec["init"])
    except ModelError as exc:
        return str(exc)
    state = model.state_dict()
    missing = [n for n in names if n not in state]
    if missing:
        return f"the model {record.model} lacks stored weights {missing[:3]}"
    return {n: state[n].float() for n in names}


def _recorded_penalty(state, view: StateView) -> Answer:
    """The store's RSST: the squared norm of the penalised weights just before the cut (recorded)
    over the weights the cut removed, against the kept weights of the stored state."""
    before = state.extra.get("penalised_squared_norm_before_cut")
    if before is None or view.previous is None:
        return "the record keeps no penalised norm before the cut for this state"
    stored, prev = view.stored, view.previous
    removed = sum(int((prev.masks[n] & ~stored.masks[n]).sum()) for n in stored.names)
    kept_sq = sum(float(stored.weights[n][stored.masks[n]].square().sum()) for n in stored.names)
    kept = sum(int(stored.masks[n].sum()) for n in stored.names)
    if not removed or not kept or not kept_sq:
        return "no weight was removed at this state's cut"
    removed_rms, kept_rms = (float(before) / removed) ** 0.5, (kept_sq / kept) ** 0.5
    coefficients = [p.get("coefficient_end") for p in state.penalty]
    return {"ratio": removed_rms / kept_rms, "removed_rms": removed_rms, "kept_rms": kept_rms,
            "removed_weights": removed, "coefficient_end": coefficients[-1] if coefficients else None,
            "measure": "penalised weights just before the cut (recorded) against the kept ones"}
