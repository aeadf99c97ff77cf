"""One stored state read safely: its prunable weights as the model computes them, its masks, and
what else the file says (the checkpoint's own ``init_weight``, ``result``, ``best_sa``).

A research-group checkpoint is a torch pickle read with ``weights_only=True``
(:func:`harness.checkpoint.reader.read_container`). Its ``state_dict`` holds plain weights, or,
for a module under ``torch.nn.utils.prune``, the pair ``<name>.weight_orig`` /
``<name>.weight_mask``: the reparametrisation is understood, not executed (the effective weight
is ``weight_orig * weight_mask``, computed here; nothing of torch's pruning code runs). A
harness store state is ``state<k>.safetensors`` plus ``state<k>.masks.safetensors``.

Only what the checks read is kept: the prunable weights (effective, and ``weight_orig`` where
stored), their masks, and the prunable tensors of ``init_weight``.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch

from harness.checkpoint.reader import CheckpointError, read_container, strip_prefixes
from harness.checkpoint.tensors import dense_problem, storage_elements
from harness.runfolder.layout import RunFolderError

BLOCK_PARTS = ("attn", "attention", "mlp", "ffn")
MAX_RESULT = 100_000          # entries of a result list kept


@dataclass
class StoredState:
    path: Path
    names: list                               # prunable weight names, in file order
    weights: dict                             # name -> effective weight (float32)
    masks: dict                               # name -> bool (True = kept)
    raw: dict = field(default_factory=dict)   # name -> weight_orig, where reparametrised
    init_weight: Optional[dict] = None        # name -> the checkpoint's own init tensor
    result: dict = field(default_factory=dict)
    best_sa: Optional[float] = None
    epoch: Optional[int] = None
    form: str = ""                            # how the weights were stored, in words

    def zeros(self) -> tuple[int, int]:
        w = [self.weights[n] for n in self.names]
        return sum(int((t == 0).sum()) for t in w), sum(t.numel() for t in w)

    @property
    def sparsity(self) -> float:
        zeros, total = self.zeros()
        return 100.0 * zeros / total if total else math.nan

    def tensor_sparsity(self, name: str) -> float:
        t = self.weights[name]
        return 100.0 * float((t == 0).sum()) / t.numel()

    def reported_accuracy(self) -> Optional[float]:
        """The test accuracy at the best validation epoch, from the file's ``result``."""
        test, val = self.result.get("test_ta"), self.result.get("ta")
        if not test or not val or len(test) != len(val):
            return None
        return test[max(range(len(val)), key=val.__getitem__)]


def prunable_from_keys(tensors: dict) -> list[str]:
    """2-D weights of the linear maps inside attention and MLP blocks (a module path with a
    component ``attn``, ``attention``, ``mlp`` or ``ffn``), as stored (``.weight`` or
    ``.weight_orig``), named ``<module>.weight``."""
    names: list = []
    for key, tensor in tensors.items():
        base = key[:-len("_orig")] if key.endswith(".weight_orig") else key
        parts = base.split(".")
        if (base.endswith(".weight") and tensor.ndim == 2 and base not in names
                and any(p in BLOCK_PARTS for p in parts[:-1])):
            names.append(base)
    return names


@dataclass(frozen=True)
class DeclaredPrunable:
    """The prunable weights of a declared layout: each ``<module>.weight`` (stored as ``.weight``
    or ``.weight_orig``) whose name ``pattern`` finds, or, with none declared, every one of two or
    more dimensions (convolutions, linear maps; not norms or biases)."""

    pattern: Optional[re.Pattern] = None

    def __call__(self, tensors: dict) -> list[str]:
        names: list = []
        for key, tensor in tensors.items():
            base = key[:-len("_orig")] if key.endswith(".weight_orig") else key
            if not base.endswith(".weight") or base in names:
                continue
            if (self.pattern.search(base) is not None) if self.pattern is not None else tensor.ndim >= 2:
                names.append(base)
        return names

    @property
    def wanted(self) -> str:
        return (f"weight whose name matches the declared prunable {self.pattern.pattern!r}"
                if self.pattern is not None else "weight of two or more dimensions")


def _bounded(tensor: object, name: str, path: Path) -> torch.Tensor:
    """``tensor`` when its values can be read at the size its storage holds; a stride-0 or
    overlapping view claiming more elements than its storage (18 KB claiming 4 GB once
    converted) is refused, as checkpoint inspection refuses it (:mod:`harness.checkpoint.tensors`)."""
    if not isinstance(tensor, torch.Tensor):
        raise RunFolderError(f"{path}: {name} is a {type(tensor).__name__}, not a tensor")
    problem = dense_problem(tensor)
    if problem:
        raise RunFolderError(f"{path}: {name} {problem}")
    stored = storage_elements(tensor)
    if tensor.numel() > stored:
        raise RunFolderError(f"{path}: {name} claims {tensor.numel():,} elements (shape "
                             f"{tuple(tensor.shape)}, strides {tensor.stride()}) over a storage of "
                             f"{stored:,}: a view that repeats its values, not stored weights; "
                             f"save the tensor itself (.clone())")
    return tensor


def _combine(state: dict, names: list, path: Path) -> tuple[dict, dict, dict, list]:
    weights, masks, raw, reparam = {}, {}, {}, []
    for name in names:
        orig, mask = state.get(f"{name}_orig"), state.get(f"{name}_mask")
        if orig is not None and mask is not None:
            orig = _bounded(orig, f"{name}_orig", path)
            mask = _bounded(mask, f"{name}_mask", path)
            if orig.shape != mask.shape:
                raise RunFolderError(f"{path}: {name}_orig {tuple(orig.shape)} and {name}_mask "
                                     f"{tuple(mask.shape)} differ in shape")
            raw[name] = orig.float()
            masks[name] = mask != 0
            weights[name] = raw[name] * masks[name]
            reparam.append(name)
        elif name in state:
            weights[name] = _bounded(state[name], name, path).float()
            masks[name] = weights[name] != 0
        else:
            raise RunFolderError(f"{path}: state_dict lacks {name} (neither {name} nor the pair "
                                 f"{name}_orig / {name}_mask)")
        if not weights[name].numel():
            raise RunFolderError(f"{path}: {name} is empty (shape {tuple(weights[name].shape)}); "
                                 f"a stored state holds the weights it trained")
    return weights, masks, raw, reparam


def _form(reparam: list, names: list) -> str:
    if not reparam:
        return "plain weights (no weight_mask)"
    if len(reparam) == len(names):
        return f"weight_orig/weight_mask pairs for all {len(names)} prunable weights"
    return f"weight_orig/weight_mask pairs for {len(reparam)} of {len(names)} prunable weights"


def read_research_state(path: Path, names: Optional[list] = None, select=None) -> StoredState:
    """A ``{k}checkpoint.pth.tar`` / ``{k}model_SA_best.pth.tar`` file (or a declared layout's
    torch file); ``names`` the prunable weights (from the model or the run's first state when
    given, else ``select(state_dict)``: :func:`prunable_from_keys` unless a declared layout's
    :func:`declared_prunable`)."""
    try:
        raw = read_container(path)
    except CheckpointError as exc:
        raise RunFolderError(str(exc)) from None
    if not isinstance(raw, dict):
        raise RunFolderError(f"{path}: holds a {type(raw).__name__}, not a checkpoint dict")
    container = raw.get("state_dict", raw)
    if not isinstance(container, dict):
        raise RunFolderError(f"{path}: its state_dict is a {type(container).__name__}, not a dict")
    try:
        state, _ = strip_prefixes(container, path)
    except CheckpointError as exc:
        raise RunFolderError(str(exc)) from None
    names = list(names) if names is not None else (select or prunable_from_keys)(state)
    if not names:
        wanted = getattr(select, "wanted", None)
        raise RunFolderError(f"{path}: no {wanted or 'attention or MLP weight'} in its state_dict "
                             f"(keys: {', '.join(list(state)[:6])}); "
                             f"{'declare prunable: REGEX' if wanted else 'pass the model by import path'}")
    weights, masks, kept_raw, reparam = _combine(state, names, path)
    return StoredState(path=Path(path), names=names, weights=weights, masks=masks, raw=kept_raw,
                       init_weight=_init_weight(raw.get("init_weight"), names, path),
                       result=_result(raw.get("result")), best_sa=_number(raw.get("best_sa")),
                       epoch=_int(raw.get("epoch")), form=_form(reparam, names))


def _init_weight(value: object, names: list, path: Path) -> Optional[dict]:
    if not isinstance(value, dict):
        return None
    try:
        tensors, _ = strip_prefixes(value, path)
    except CheckpointError:
        return None
    return {n: _bounded(tensors[n], f"init_weight {n}", path).float() for n in names if n in tensors}


def _result(value: object) -> dict:
    if not isinstance(value, dict):
        return {}
    out = {}
    for key in ("train", "ta", "test_ta"):
        items = value.get(key)
        if isinstance(items, list):
            out[key] = [float(v) for v in items[:MAX_RESULT]
                        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    return out


def _number(value: object) -> Optional[float]:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _int(value: object) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def read_store_state(checkpoint: Path, masks_path: Optional[Path]) -> StoredState:
    """A harness store state: weights and masks (safetensors; the masks name the prunable
    weights)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(checkpoint))
        stored_masks = load_file(str(masks_path)) if masks_path else None
    except (SafetensorError, OSError) as exc:
        raise RunFolderError(f"{checkpoint}: cannot be read ({exc})") from None
    if stored_masks is None:
        raise RunFolderError(f"{checkpoint}: its state records no masks file; a pruning run of the "
                             f"store keeps one per state")
    names = [n for n in stored_masks if n in tensors]
    return StoredState(path=Path(checkpoint), names=names,
                       weights={n: tensors[n].float() for n in names},
                       masks={n: stored_masks[n].bool() for n in names},
                       form="the harness store's weights with its masks file")


def read_weights(path: Path, names: list) -> dict:
    """The prunable tensors of an init or rewind file (a plain state dict, or a container)."""
    from harness.checkpoint.reader import read_checkpoint

    try:
        loaded = read_checkpoint(path)
    except CheckpointError as exc:
        raise RunFolderError(str(exc)) from None
    tensors = loaded.tensors
    missing = [n for n in names if n not in tensors]
    if missing:
        raise RunFolderError(f"{path}: lacks {len(missing)} prunable weight(s) the run stores, "
                             f"e.g. {', '.join(missing[:3])}")
    return {n: _bounded(tensors[n], n, path).float() for n in names}
