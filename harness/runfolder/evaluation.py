"""The stored model of a state, evaluated on the test split of its data.

A research-group file is loaded into the model its import path names (``package.module:factory``,
called with ``num_classes``, ``image_size`` and ``in_chans`` as its signature accepts), strictly:
every key of the file's ``state_dict`` must fit, the ``weight_orig`` / ``weight_mask`` pairs folded
into the weight they make. The model receives the test images preprocessed as the dataset
declares the lab's pipeline fed them (:mod:`harness.data.preprocess`: a factory's ``mean`` /
``std`` or ``transform``); a dataset that declares none gives them in [0, 1], as torchvision's
``ToTensor`` does (the research group's pipeline: their models normalise themselves, or not at
all: their ViT holds a ``normalize`` module its forward never calls). A harness store state is
evaluated exactly as the engine evaluates it (its batches, normalisation and size). Either way
the evidence names the preprocessing used.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch

from harness.checkpoint.reader import CheckpointError, read_container, strip_prefixes
from harness.runfolder.layout import RunFolderError

EVAL_BATCH = 256


def folded_state_dict(path: Path) -> dict:
    """A checkpoint's ``state_dict`` with each pruning reparametrisation folded into its weight."""
    try:
        raw = read_container(path)
        state, _ = strip_prefixes(raw.get("state_dict", raw) if isinstance(raw, dict) else {}, path)
    except CheckpointError as exc:
        raise RunFolderError(str(exc)) from None
    folded = {}
    for key, tensor in state.items():
        if key.endswith("_mask") and f"{key[:-5]}_orig" in state:
            continue
        if key.endswith("_orig") and f"{key[:-5]}_mask" in state:
            folded[key[:-5]] = tensor * state[f"{key[:-5]}_mask"]
        else:
            folded[key] = tensor
    return folded


class Evaluator:
    """The dataset and model of a run, loaded once; ``research(path)`` / ``engine(record, state)``
    give ``(correct, n)`` on the test split."""

    def __init__(self, dataset: Optional[str], model: Optional[str], data_root: Optional[Path] = None,
                 device: str = "cpu") -> None:
        self.dataset_name, self.model_name = dataset, model
        self.data_root, self.device = data_root, torch.device(device)
        self._dataset = None

    def missing(self) -> Optional[str]:
        lacking = [what for what, value in (("--harness-dataset NAME (a dataset name or "
                                             "package.module:factory)", self.dataset_name),
                                            ("--harness-from-run-model package.module:factory",
                                             self.model_name)) if not value]
        return f"evaluating the stored state needs {' and '.join(lacking)}" if lacking else None

    def dataset(self):
        from harness.data import DataError, load_dataset

        if self._dataset is None:
            try:
                self._dataset = load_dataset(self.dataset_name, self.data_root)
            except DataError as exc:
                raise RunFolderError(f"--harness-dataset {self.dataset_name}: {exc}") from None
        return self._dataset

    def _model(self, num_classes: int, channels: int, size: int):
        from harness.models import ModelError, create_model

        try:
            return create_model(self.model_name, num_classes, channels, size)
        except ModelError as exc:
            raise RunFolderError(f"--harness-from-run-model: {exc}") from None

    def research(self, path: Path) -> tuple[int, int]:
        data = self.dataset()
        model = self._model(data.num_classes, data.channels, data.image_size)
        state = folded_state_dict(path)
        own = model.state_dict()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        shapes = [k for k in own if k in state and own[k].shape != state[k].shape]
        if missing or unexpected or shapes:
            raise RunFolderError(f"{path} does not fit {self.model_name}: missing {missing[:3]}, "
                                 f"unexpected {unexpected[:3]}, shape-mismatched {shapes[:3]}")
        model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
        return self._count(model.to(self.device), data.test.images, data.test.labels)

    def preprocessing(self):
        """How the lab's model is fed the test images: as the dataset declares (else [0, 1])."""
        from harness.data.preprocess import undeclared

        data = self.dataset()
        return data.preprocess or undeclared(self.dataset_name)

    def _count(self, model, images: torch.Tensor, labels: torch.Tensor) -> tuple[int, int]:
        from harness.data.preprocess import PreprocessError

        prep = self.preprocessing()
        model.eval()
        correct = 0
        with torch.no_grad():
            for start in range(0, len(labels), EVAL_BATCH):
                try:
                    x = prep(images[start:start + EVAL_BATCH].to(self.device))
                except PreprocessError as exc:
                    raise RunFolderError(f"--harness-dataset {self.dataset_name}: {exc}") from None
                y = labels[start:start + EVAL_BATCH].to(self.device)
                correct += int((model(x).argmax(1) == y).sum())
        return correct, len(labels)

    def engine(self, record, state) -> tuple[int, int, str]:
        """A harness store state, evaluated as the engine evaluates: ``(correct, n, the
        preprocessing used)``."""
        from safetensors.torch import load_file

        from harness.data import DataError, load_dataset
        from harness.data.preprocess import training_path
        from harness.models import create_model
        from harness.runs import batches_for
        from harness.spec import spec_from_dict
        from harness.train import evaluate

        spec = spec_from_dict(record.spec)
        try:
            dataset = load_dataset(spec.dataset, self.data_root)
        except DataError as exc:
            raise RunFolderError(str(exc)) from None
        model = create_model(record.model, record.num_classes, record.in_chans, record.image_size)
        model.load_state_dict(load_file(state.checkpoint))
        _, test = batches_for(spec, dataset, self.device)
        return (*evaluate(model.to(self.device), test), training_path(dataset).describe())


def evaluate_state(run, index: int):
    """``(correct, n, reported accuracy, evidence)`` of state ``index`` of ``run``, or why it
    cannot be evaluated (a missing option or report). A file that does not fit the model raises
    :class:`RunFolderError`."""
    evaluator = run.evaluator
    if evaluator is None:
        return "no data or model to evaluate the stored state with"
    if run.layout.kind == "store":
        state = run.record.state(index)
        if state.stored_accuracy is None:
            return f"state {index} records no accuracy of its stored model"
        correct, n, preprocessing = evaluator.engine(run.record, state)
        return correct, n, state.stored_accuracy, {
            "file": run.shown(state.checkpoint),
            "reported_from": f"state{index}.json stored_correct / stored_n",
            "preprocessing": preprocessing}
    missing = evaluator.missing()
    if missing:
        return missing
    files = run.layout.states[index]
    path = files.best or files.checkpoint
    reported, where = _reported(run, index, path)
    if reported is None:
        return f"the run reports no accuracy for state {index} (no '* best SA=' line, no result)"
    correct, n = evaluator.research(path)
    return correct, n, reported, {"file": run.shown(path), "reported_from": where,
                                  "dataset": evaluator.dataset_name, "model": evaluator.model_name,
                                  "preprocessing": evaluator.preprocessing().describe()}


def _reported(run, index: int, path: Path) -> tuple:
    """The best SA the log printed for the state, else the one the file's result gives."""
    from harness.runfolder.stored import read_research_state

    state = run.log.state(index) if run.log is not None else None
    if state is not None and state.extra.get("best_sa_logged") is not None:
        line = dict(map(tuple, run.log.notes.get("best_sa_lines", []))).get(index)
        return float(state.extra["best_sa_logged"]), f"log line {line}: * best SA={state.extra['best_sa_logged']}"
    value = read_research_state(path, run.names).reported_accuracy()
    return value, f"result['test_ta'] at the best result['ta'] in {run.shown(path)}"
