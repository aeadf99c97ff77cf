"""The state loop and the content-addressed runs store.

``get_or_run(spec, context)`` returns a :class:`RunRecord`. Runs live under
``<reports-dir>/runs/<key>/`` where ``key`` hashes the spec, the harness version, the device type,
the init file's bytes and the code the run computes from (:func:`run_key`). Each completed state
is written (atomically) as ``state<k>.json`` plus ``state<k>.safetensors``; ``record.json`` marks
the whole run complete. A stored complete run is returned without training; an interrupted one
resumes after its last completed state.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from harness.storage import file_digest
from harness.closure import code_key, code_record, run_code
from harness.data import Dataset, load_dataset
from harness.data.batches import Batches, augment_for
from harness.data.holdout import hold_out
from harness.environment import environment, git_commit
from harness.lock import exclusive
from harness.models import create_model, load_init, model_definition, native_image_size
from harness.progress import ProgressOut, progress_bar
from harness.prune.masks import MaskSet
from harness.prune.methods import METHODS
from harness.prune.structure import families, summary, unit_shares
from harness.threads import DEFAULT_THREADS, cpu_threads
from harness.timmref import timm_name
from harness.record import RunRecord, StateRecord
from harness.spec import RunSpec
from harness.store import RunStore
from harness.train import PhaseHooks, PhaseResult, evaluate, train_phase, training_forward


@dataclass(frozen=True)
class RunContext:
    """Where and how runs execute; nothing here changes what a run computes except the device."""

    device: torch.device
    reports_dir: Path
    data_root: Optional[Path] = None
    download: bool = False
    rerun: bool = False
    progress: bool = True
    threads: int = DEFAULT_THREADS
    compile: bool = True       # torch.compile the training forward on CUDA (--no-compile: eager)
    echo: Optional[Callable[[str], None]] = None   # where a command's live output goes
    progress_out: Optional[ProgressOut] = None     # where progress goes (None: standard error)
    root: Optional[Path] = None   # the project root RunSpec.inputs are relative to (None: cwd)
    log_patterns: Any = None   # the project's declared log format: how a command's log is read
    bars: Any = None           # the session's BarBook: what a stop_on_fail command is judged by
    stop_rule: Optional[Callable] = None   # builds a stop_on_fail command's line judge (the
                                           # session passes harness.watch.inline.stop_rule)

    @property
    def store(self) -> RunStore:
        return RunStore(self.reports_dir / "runs")


def init_digest(init: Optional[str]) -> str:
    if init is None:
        return ""
    if timm_name(init) is not None:
        return init
    return file_digest(init)


def run_key(spec: RunSpec, device: torch.device, root: Optional[Path] = None) -> str:
    """The store key of ``spec``: its values, the harness version, the device type, the init
    file's bytes, the model's definition and the code the run computes from (a user's factories
    and the project files they import, ``spec.inputs``: :func:`harness.closure.run_code`)."""
    return spec.stable_hash(device_type=device.type, init_digest=init_digest(spec.init),
                            model_definition=model_definition(spec.model),
                            code=code_key(run_code(spec, root)))


def stored_run(store: RunStore, key: str, rerun: bool) -> Optional[RunRecord]:
    """The cached-run policy, in one place: ``rerun`` clears the key; a complete and intact
    stored run is reused (marked ``reused``); otherwise None (train it, resuming after the last
    intact state)."""
    if rerun:
        store.clear(key)
    stored = store.complete(key)
    if stored is not None:
        stored.notes["reused"] = True
    return stored


def shared_dense_spec(spec: RunSpec) -> Optional[RunSpec]:
    """The dense run whose State 0 the pruning run ``spec`` shares (it rewinds to the init, or
    not at all), or None: that run is trained first, once, and reused (``Engine._dense_state``)."""
    if spec.prune is None or spec.prune.rewind_epoch:
        return None
    return replace(spec, prune=None)


def get_or_run(spec: RunSpec, context: RunContext) -> RunRecord:
    key = run_key(spec, context.device, context.root)
    store = context.store
    with exclusive(store.lock_path(key), f"run {key} ({spec.label or spec.model})"):
        stored = stored_run(store, key, context.rerun)
        if stored is not None:
            return stored
        with cpu_threads(context.threads if context.device.type == "cpu" else None):
            return Engine(spec, context, key, store).run()


class Engine:
    """Trains one RunSpec state by state, storing each completed state.

    State 0 trains the dense model (and, for a pruning run, keeps the weights to rewind to).
    Each later state asks the spec's pruning method for a plan from the trained weights, rewinds,
    trains under the plan's masks (re-applied after every optimiser step) and penalty, applies
    the plan's final masks and stores weights and masks.
    """

    def __init__(self, spec: RunSpec, context: RunContext, key: str,
                 store: Optional[RunStore] = None) -> None:
        self.spec, self.context, self.key = spec, context, key
        self.store = store if store is not None else context.store
        self.device = context.device
        self.masks: Optional[MaskSet] = None
        self.families: list = []
        self.rewind_weights: Optional[dict] = None
        self.validation: Optional[Batches] = None

    def run(self) -> RunRecord:
        spec = self.spec
        dataset = load_dataset(spec.dataset, self.context.data_root, self.context.download)
        held = None
        if spec.validation:
            dataset, held = hold_out(dataset, spec.validation)
        torch.manual_seed(spec.seed)
        image_size = spec.image_size or native_image_size(spec.model) or dataset.image_size
        model = create_model(spec.model, dataset.num_classes, dataset.channels, image_size)
        audit = load_init(model, spec.init).to_dict() if spec.init else None
        model.to(self.device)
        self.step_fn = training_forward(model, self.device, self.context.compile)
        if spec.prune:
            self.masks = MaskSet.dense(model, spec.prune.include_head)
            self.families = families(model, self.masks)
            if spec.prune.rewind_epoch == 0:
                self.rewind_weights = _snapshot(model)
        train, test = self._batches(dataset)
        if held is not None:
            self.validation = validation_batches(spec, dataset, held, self.device)
        later = self._later_batches(dataset, train)
        states = self.store.states(self.key)
        resumed = len(states)
        if states:
            self._restore(model, states[-1])
        n_states = 1 + (spec.prune.states if spec.prune else 0)
        for index in range(len(states), n_states):
            states.append(self._run_state(index, model, train if index == 0 else later, test))
        record = RunRecord(
            run_id=self.key, source="engine", dataset=spec.dataset, num_classes=dataset.num_classes,
            model=spec.model, spec=spec.to_dict(), init=spec.init,
            claims_pretrained=spec.claims_pretrained, states=states, init_audit=audit,
            environment=environment(self.device),
            notes={"reused": False, "resumed_after_state": resumed - 1 if resumed else None,
                   "store_repairs": list(self.store.repairs),
                   "dataset_source": dataset.source, "train_n": len(dataset.train),
                   "test_n": len(dataset.test), "validation_n": len(held) if held is not None else 0,
                   "compiled": self.step_fn is not model,
                   "keyed_code": code_record(run_code(spec, self.context.root))},
            in_chans=dataset.channels, image_size=image_size)
        self.store.save_record(self.key, record)
        return record

    def _batches(self, dataset: Dataset) -> tuple[Batches, Batches]:
        return batches_for(self.spec, dataset, self.device)

    def _later_batches(self, dataset: Dataset, train: Batches) -> Batches:
        """Training batches of States 1..N (their own recipe's batch size and augmentation)."""
        prune, recipe = self.spec.prune, self.spec.recipe
        later = prune.state_recipe if prune and prune.state_recipe else recipe
        same = (later.batch_size, later.augment, later.crop_padding) == \
            (recipe.batch_size, recipe.augment, recipe.crop_padding)
        return train if same else batches_for(replace(self.spec, recipe=later), dataset, self.device)[0]

    def _restore(self, model: torch.nn.Module, last: StateRecord) -> None:
        from safetensors.torch import load_file

        device = str(self.device)
        model.load_state_dict(load_file(last.checkpoint, device=device))
        if self.masks is not None:
            self.masks = self.masks.load(load_file(last.masks, device=device), last.masks)
            if self.spec.prune.rewind_epoch:    # epoch K > 0; the init is kept from creation
                self.rewind_weights = load_file(str(self.store.rewind_path(self.key)), device=device)

    def _train_phase(self, model, train, test, recipe, **kwargs) -> PhaseResult:
        """The engine's one call into train_phase (harness.distributed adds its DDP forward here)."""
        return train_phase(model, train, test, recipe, validation=self.validation, **kwargs)

    def _run_state(self, index: int, model, train: Batches, test: Batches) -> StateRecord:
        if index == 0:
            return self._dense_state(model, train, test)
        return self._pruned_state(index, model, train, test)

    def _dense_state(self, model, train: Batches, test: Batches) -> StateRecord:
        if shared_dense_spec(self.spec) is not None:
            return self._shared_dense_state(model)
        recipe = self.spec.recipe
        hooks = self._rewind_capture(model, len(train))
        with self._progress(recipe, train, 0) as bar:
            phase = self._train_phase(model, train, test, recipe, hooks=hooks, progress=bar,
                                      step_fn=self.step_fn)
        state = _state_record(0, phase)
        if self.masks is not None:
            self.store.save_rewind(self.key, self.rewind_weights,
                                   {"run_id": self.key, "rewind": self.spec.prune.rewind})
            last = phase.epochs[-1]
            self._describe_pruning(state, 0.0, last.test_correct, last.test_n)
        return self._save(state, model)

    def _shared_dense_state(self, model) -> StateRecord:
        """State 0 of a pruning run that rewinds to the init (or not at all) is the dense run of
        the same spec: trained once (or found in the store) and shared by every method and the
        baseline suite. Its checkpoint stays the dense run's file."""
        from safetensors.torch import load_file

        dense = get_or_run(shared_dense_spec(self.spec), replace(self.context, rerun=False))
        state = StateRecord.from_dict(dense.state(0).to_dict())
        model.load_state_dict(load_file(state.checkpoint, device=str(self.device)))
        last = state.epochs[-1]
        self._describe_pruning(state, 0.0, last.test_correct, last.test_n)
        state.extra["shared_from_run"] = dense.run_id
        self.store.save_masks(self.key, state, self.masks.to_tensors(), {"run_id": self.key, "state": "0"})
        return self.store.save_state_record(self.key, state)

    def _rewind_capture(self, model, steps_per_epoch: int) -> PhaseHooks:
        """Hooks that keep the weights each later state rewinds to (State 0's epoch K > 0)."""
        epoch = self.spec.prune.rewind_epoch if self.spec.prune else None
        if not epoch:
            return PhaseHooks()
        at, seen = epoch * steps_per_epoch, [0]

        def after_step() -> None:
            seen[0] += 1
            if seen[0] == at:
                self.rewind_weights = _snapshot(model)
        return PhaseHooks(after_step=after_step)

    def _pruned_state(self, index: int, model, train: Batches, test: Batches) -> StateRecord:
        prune = self.spec.prune
        recipe = prune.state_recipe or self.spec.recipe
        fraction = prune.sparsity_at(index, unit_shares(self.families, self.masks))
        torch.manual_seed(self.spec.seed + index)   # a resumed run trains each state as an unbroken one
        train.generator.manual_seed(self.spec.seed + index)
        plan = METHODS[prune.method].plan(self.masks, self.families, fraction, prune)
        if self.rewind_weights is not None:
            model.load_state_dict(self.rewind_weights)
        plan.train.apply()
        hooks = PhaseHooks(penalty=plan.penalty, after_step=plan.train.apply)
        with self._progress(recipe, train, index) as bar:
            phase = self._train_phase(model, train, test, recipe, hooks=hooks, progress=bar,
                                      step_fn=self.step_fn)
        before_cut = plan.penalty.squared_norm().item() if plan.penalty else None
        plan.final.apply()
        self.masks = plan.final
        if plan.final is plan.train:   # the last epoch's evaluation already saw the stored model
            correct, n = phase.epochs[-1].test_correct, phase.epochs[-1].test_n
        else:                          # a cut at the end of the state (RSST) changed the model
            correct, n = evaluate(model, test)
        state = _state_record(index, phase)
        self._describe_pruning(state, fraction, correct, n)
        if plan.penalty is not None:
            state.penalty = plan.penalty.per_epoch(phase.epochs)
            state.extra["penalised_squared_norm_before_cut"] = before_cut
        return self._save(state, model)

    def _describe_pruning(self, state: StateRecord, fraction: float, correct: int, n: int) -> None:
        state.target_sparsity = 100.0 * fraction
        state.sparsity, state.layer_sparsity = self.masks.sparsities()
        state.structure = summary(self.families, self.masks.masks)
        state.stored_correct, state.stored_n = correct, n
        state.extra["method"] = self.spec.prune.method

    def _save(self, state: StateRecord, model) -> StateRecord:
        metadata = {"run_id": self.key, "state": str(state.index), "spec": self.spec.to_dict(),
                    "harness_git_commit": git_commit(), "device": str(self.device),
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        if self.masks is not None:
            self.store.save_masks(self.key, state, self.masks.to_tensors(), metadata)
        return self.store.save_state(self.key, state, model.state_dict(), metadata)

    def _desc(self, index: int) -> str:
        return f"{self.spec.label or self.spec.dataset} state {index}"

    def _progress(self, recipe, train: Batches, index: int):
        return progress_bar(recipe.epochs * train.samples_per_epoch, self._desc(index),
                            self.context.progress, epochs=recipe.epochs, out=self.context.progress_out)


def batches_for(spec: RunSpec, dataset: Dataset, device: torch.device) -> tuple[Batches, Batches]:
    """The train and test batches of ``spec`` on ``device``, exactly as the engine trains them."""
    recipe = spec.recipe
    size = spec.image_size or native_image_size(spec.model)
    size = None if size == dataset.image_size else size
    aug = augment_for(recipe.augment, recipe.crop_padding, dataset)
    train = Batches(dataset.train, dataset, batch_size=recipe.batch_size, device=device,
                    train=True, augment=aug, image_size=size, seed=spec.seed)
    test = Batches(dataset.test, dataset, batch_size=recipe.eval_batch_size, device=device,
                   train=False, image_size=size)
    return train, test


def _snapshot(model: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def validation_batches(spec: RunSpec, dataset: Dataset, held, device: torch.device) -> Batches:
    """The held-out validation images of ``spec``, evaluated as its test split is."""
    size = spec.image_size or native_image_size(spec.model)
    size = None if size == dataset.image_size else size
    return Batches(held, dataset, batch_size=spec.recipe.eval_batch_size, device=device,
                   train=False, image_size=size)


def _state_record(index: int, phase: PhaseResult) -> StateRecord:
    state = StateRecord(index=index, epochs=phase.epochs, first_batch_loss=phase.first_batch_loss,
                        first_batch_accuracy=phase.first_batch_accuracy, intra_epoch=phase.intra_epoch,
                        test_n=phase.test_n, seconds=phase.seconds, images_per_s=phase.images_per_s,
                        peak_memory_mb=phase.peak_memory_mb)
    chosen = state.best_validation_epoch
    if chosen is not None:
        state.extra["best_sa"] = {
            "definition": "test accuracy at the best-validation epoch (the research group's 'best "
                          "SA'); best_test_accuracy is the harness's own best-epoch figure",
            "test_accuracy": chosen.test_accuracy, "epoch": chosen.epoch,
            "validation_accuracy": chosen.val_accuracy, "validation_n": chosen.val_n,
            "best_test_accuracy": state.best_accuracy}
    return state
