"""The state loop and the content-addressed runs store.

``get_or_run(spec, context)`` returns a :class:`RunRecord`. Runs live under
``<reports-dir>/runs/<key>/`` where ``key`` hashes the spec, the harness version, the device type
and the init file's bytes. Each completed state is written (atomically) as ``state<k>.json``
plus ``state<k>.safetensors``; ``record.json`` marks the whole run complete. A stored complete
run is returned without training; an interrupted one resumes after its last completed state.
"""
from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import torch

from harness import storage
from harness.data import Dataset, load_dataset
from harness.data.batches import Batches, augment_for
from harness.environment import environment, git_commit
from harness.lock import exclusive
from harness.models import create_model, load_init, model_definition, native_image_size
from harness.progress import progress_bar
from harness.record import RunRecord, StateRecord
from harness.spec import RunSpec
from harness.train import PhaseResult, train_phase, training_forward


# CPU intra-op threads for runs. The CPU models (smoke) are too small to gain from more, and
# OpenMP threads collapse when the cores are shared: measured on the 2-core CI machine class
# with other processes running, 3 smoke epochs took 5.5 s with 1 thread and 91.6 s with 2.
CPU_THREADS = 1


@dataclass(frozen=True)
class RunContext:
    """Where and how runs execute; nothing here changes what a run computes except the device."""

    device: torch.device
    reports_dir: Path
    data_root: Optional[Path] = None
    download: bool = False
    rerun: bool = False
    progress: bool = True
    threads: int = CPU_THREADS
    compile: bool = True       # torch.compile the training forward on CUDA (--no-compile: eager)

    @property
    def store(self) -> "RunStore":
        return RunStore(self.reports_dir / "runs")


class RunStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key

    def complete(self, key: str) -> Optional[RunRecord]:
        path = self.path(key) / "record.json"
        return RunRecord.from_dict(storage.read_json(path)) if path.is_file() else None

    def states(self, key: str) -> list[StateRecord]:
        """Completed states in order, stopping at the first gap."""
        found = []
        while (self.path(key) / f"state{len(found)}.json").is_file():
            found.append(StateRecord.from_dict(storage.read_json(self.path(key) / f"state{len(found)}.json")))
        return found

    def save_state(self, key: str, state: StateRecord, tensors: dict, metadata: dict) -> StateRecord:
        ckpt = self.path(key) / f"state{state.index}.safetensors"
        storage.save_tensors(ckpt, tensors, metadata)
        state.checkpoint = str(ckpt)
        storage.write_json(self.path(key) / f"state{state.index}.json", state.to_dict())
        return state

    def save_record(self, key: str, record: RunRecord) -> None:
        storage.write_json(self.path(key) / "record.json", record.to_dict())

    def clear(self, key: str) -> None:
        folder = self.path(key)
        if folder.is_dir():
            for item in folder.iterdir():
                item.unlink()


def init_digest(init: Optional[str]) -> str:
    if init is None:
        return ""
    if init.startswith("timm:"):
        return init
    digest = hashlib.sha256()
    with open(init, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def run_key(spec: RunSpec, device: torch.device) -> str:
    return spec.stable_hash(device_type=device.type, init_digest=init_digest(spec.init),
                            model_definition=model_definition(spec.model))


def get_or_run(spec: RunSpec, context: RunContext) -> RunRecord:
    key = run_key(spec, context.device)
    with exclusive(context.store.root / f"{key}.lock"):  # no run trains twice, across processes
        return _get_or_run_locked(spec, context, key)


def _get_or_run_locked(spec: RunSpec, context: RunContext, key: str) -> RunRecord:
    store = context.store
    if context.rerun:
        store.clear(key)
    stored = store.complete(key)
    if stored is not None:
        stored.notes["reused"] = True
        return stored
    with cpu_threads(context.threads if context.device.type == "cpu" else None):
        return Engine(spec, context, key).run()


@contextlib.contextmanager
def cpu_threads(n: Optional[int]) -> Iterator[None]:
    """Run with ``n`` torch intra-op threads, restoring the previous count afterwards."""
    previous = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class Engine:
    """Trains one RunSpec state by state, storing each completed state."""

    def __init__(self, spec: RunSpec, context: RunContext, key: str) -> None:
        self.spec, self.context, self.key = spec, context, key
        self.store = context.store
        self.device = context.device

    def run(self) -> RunRecord:
        spec = self.spec
        dataset = load_dataset(spec.dataset, self.context.data_root, self.context.download)
        torch.manual_seed(spec.seed)
        model = create_model(spec.model, dataset.num_classes, dataset.channels)
        audit = load_init(model, spec.init).to_dict() if spec.init else None
        model.to(self.device)
        self.step_fn = training_forward(model, self.device, self.context.compile)
        train, test = self._batches(dataset)
        states = self.store.states(self.key)
        resumed = len(states)
        if states:
            self._restore(model, states[-1])
        n_states = 1 + (spec.prune.states if spec.prune else 0)
        for index in range(len(states), n_states):
            states.append(self._run_state(index, model, train, test))
        record = RunRecord(
            run_id=self.key, source="engine", dataset=spec.dataset, num_classes=dataset.num_classes,
            model=spec.model, spec=spec.to_dict(), init=spec.init,
            claims_pretrained=spec.claims_pretrained, states=states, init_audit=audit,
            environment=environment(self.device),
            notes={"reused": False, "resumed_after_state": resumed - 1 if resumed else None,
                   "dataset_source": dataset.source, "train_n": len(dataset.train),
                   "test_n": len(dataset.test), "compiled": self.step_fn is not model})
        self.store.save_record(self.key, record)
        return record

    def _batches(self, dataset: Dataset) -> tuple[Batches, Batches]:
        return batches_for(self.spec, dataset, self.device)

    def _restore(self, model: torch.nn.Module, last: StateRecord) -> None:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(last.checkpoint, device=str(self.device)))

    def _train_phase(self, model, train, test, recipe, **kwargs) -> PhaseResult:
        """The engine's one call into train_phase (harness.distributed adds its DDP forward here)."""
        return train_phase(model, train, test, recipe, **kwargs)

    def _run_state(self, index: int, model, train: Batches, test: Batches) -> StateRecord:
        if index > 0:
            raise NotImplementedError("pruning states are not built yet (issue 4)")
        recipe = self.spec.recipe
        desc = f"{self.spec.label or self.spec.dataset} state {index}"
        with progress_bar(recipe.epochs * train.samples_per_epoch, desc, self.context.progress) as bar:
            phase = self._train_phase(model, train, test, recipe, progress=bar, step_fn=self.step_fn)
        state = _state_record(index, phase)
        metadata = {"run_id": self.key, "state": str(index), "spec": self.spec.to_dict(),
                    "harness_git_commit": git_commit(), "device": str(self.device),
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        return self.store.save_state(self.key, state, model.state_dict(), metadata)


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


def _state_record(index: int, phase: PhaseResult) -> StateRecord:
    return StateRecord(index=index, epochs=phase.epochs, first_batch_loss=phase.first_batch_loss,
                       first_batch_accuracy=phase.first_batch_accuracy, intra_epoch=phase.intra_epoch,
                       test_n=phase.test_n, seconds=phase.seconds, images_per_s=phase.images_per_s,
                       peak_memory_mb=phase.peak_memory_mb)
