"""Loading a checkpoint into a model, audited: every key of the file and of the model accounted
for (loaded, resampled, a classifier head of another class count left at its fresh init, input
statistics left out, missing, unexpected, shape-mismatched), and one list of what makes a file
not fit (:func:`fit_problems`), which ``--init`` refuses and ``harness inspect --arch`` reports.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

import torch
from torch import nn

from harness.checkpoint.layout import TokenGrid, describe_layout, token_grid
from harness.checkpoint.reader import CheckpointError, read_checkpoint
from harness.checkpoint.tensors import JUDGED_DTYPES, dense_problem, storage_elements
from harness.escape import terminal
from harness.heads import classifier_keys
from harness.timmref import TimmRefError, timm_name


class ModelError(RuntimeError):
    """An unknown model name, or an init that does not fit the model."""


# Resampling bounds: the largest patch kernel (timm's largest is 32 x 32) and grid side (a
# 518-pixel DINOv2 at patch 14 has 37) a file may bring; beyond them it is a shape mismatch.
MAX_PATCH_POSITIONS = 64 * 64
MAX_GRID_SIDE = 256

HEAD_KEYS = ("head.weight", "head.bias", "head.fc.weight", "head.fc.bias", "fc.weight",
             "fc.bias", "classifier.weight", "classifier.bias")



@dataclass
class LoadAudit:
    """What an init load did: every key accounted for."""

    source: str
    container: str = "top level"
    stripped_prefixes: list = field(default_factory=list)
    loaded: int = 0
    missing: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    shape_mismatched: list = field(default_factory=list)
    head_reinitialised: list = field(default_factory=list)
    resampled: list = field(default_factory=list)
    ignored_buffers: list = field(default_factory=list)   # input statistics the data pipeline replaces
    fraction_supplied: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def _head_keys(model: nn.Module) -> set:
    """The classifier head's keys (harness.heads: the model's word, else its structure), plus
    the conventional names, so a file's head of another class count is recognised."""
    return set(HEAD_KEYS) | classifier_keys(model)


# An input-normalisation module's statistics (e.g. the research group's
# ``normalize = NormalizeByChannelMeanStd(mean, std)`` with ``normalize.mean/std`` buffers):
# at most 4 values (image channels) in a module holding nothing else. The harness normalises
# its inputs with the dataset's statistics, so these are not loaded; the audit lists them.
_STAT_NAMES = ("mean", "std")
MAX_STAT_VALUES = 4


def input_statistics(incoming: dict, own: dict) -> dict:
    """The file's input-normalisation buffers the model does not have: key -> values."""
    found = {}
    for key, tensor in incoming.items():
        module, _, name = key.rpartition(".")
        siblings = [k for k in incoming if k.rpartition(".")[0] == module]
        if (key not in own and name in _STAT_NAMES and module
                and all(k.rpartition(".")[2] in _STAT_NAMES for k in siblings)
                and isinstance(tensor, torch.Tensor) and 0 < tensor.numel() <= MAX_STAT_VALUES
                and tensor.is_floating_point() and not tensor.is_sparse):
            found[key] = [round(float(v), 6) for v in tensor.reshape(-1)]
    return found


def _read_source(source: str) -> tuple[dict, LoadAudit]:
    try:
        name = timm_name(source)
    except TimmRefError as exc:
        raise ModelError(f"--init {exc}") from None
    if name is not None:
        import timm

        try:
            hub = timm.create_model(name, pretrained=True)
        except (OSError, RuntimeError, ValueError) as exc:
            raise ModelError(f"--init {source}: timm could not provide pretrained weights for "
                             f"{name!r} ({type(exc).__name__}: {str(exc)[:200]}); on a machine "
                             f"without network pass a local file instead") from None
        return hub.state_dict(), LoadAudit(source=source, container="timm hub")
    try:
        ckpt = read_checkpoint(source)
    except CheckpointError as exc:
        raise ModelError(terminal(f"--init: {exc}")) from None
    return ckpt.tensors, LoadAudit(source=source, container=ckpt.container,
                                   stripped_prefixes=list(ckpt.stripped_prefixes))


def _adapt(key: str, tensor: torch.Tensor, target: torch.Tensor, model: nn.Module,
           file_grid: Optional[TokenGrid]) -> Optional[torch.Tensor]:
    """Resample position embeddings and patch kernels to the model's grid, as timm does, where
    the file's own layout allows it (None otherwise: a shape mismatch)."""
    if tensor.dtype not in JUDGED_DTYPES or tensor.numel() > storage_elements(tensor):
        return None       # no float values, or a view repeating its storage: never resampled
    if key == "pos_embed":
        return _resampled_pos_embed(tensor, target, model, file_grid)
    if (key == "patch_embed.proj.weight" and tensor.ndim == 4 and target.ndim == 4
            and tensor.shape[:2] == target.shape[:2]
            and tensor.shape[2] * tensor.shape[3] <= MAX_PATCH_POSITIONS):
        from timm.layers import resample_patch_embed
        return resample_patch_embed(tensor, list(target.shape[-2:]))
    return None


def _resampled_pos_embed(tensor: torch.Tensor, target: torch.Tensor, model: nn.Module,
                         file_grid: Optional[TokenGrid]) -> Optional[torch.Tensor]:
    """Only a square grid (after the file's own prefix tokens) of the model's width, carrying as
    many prefix tokens as the model's position embedding."""
    grid = getattr(getattr(model, "patch_embed", None), "grid_size", None)
    if (file_grid is None or file_grid.side is None or grid is None or target.ndim != 3
            or file_grid.width != target.shape[-1] or file_grid.side > MAX_GRID_SIDE):
        return None
    if target.shape[1] - grid[0] * grid[1] != file_grid.prefix:
        return None
    from timm.layers import resample_abs_pos_embed
    return resample_abs_pos_embed(tensor, new_size=list(grid),
                                  old_size=[file_grid.side, file_grid.side],
                                  num_prefix_tokens=file_grid.prefix)


def load_init(model: nn.Module, source: str) -> LoadAudit:
    """Load ``source`` into ``model``: strict apart from a head with another class count.

    Raises :class:`ModelError` (one line) when the file cannot be read or does not fit: what the
    file holds (token grid, width, patch, depth), what the model needs, and the missing,
    unexpected and shape-mismatched keys; a head whose shape differs stays at its fresh init
    and is reported.
    """
    incoming, audit = _read_source(source)
    accepted = audit_keys(model, incoming, audit)
    problems = "; ".join(fit_problems(audit))
    if problems:
        raise ModelError(terminal(
            f"--init {source} does not fit the model: the file holds "
            f"{describe_layout(incoming)}; the model needs {describe_layout(model.state_dict())}"
            f"; {problems}"))
    model.load_state_dict(accepted, strict=False)  # every other key is listed in the audit
    return audit


def audit_keys(model: nn.Module, incoming: dict, audit: LoadAudit) -> dict:
    """Match ``incoming`` tensors to the model's keys, filling ``audit``; returns the accepted
    tensors (resampled where timm would resample, heads of another class count left out).
    Tensors without dense values (sparse, meta) never load: they count as shape-mismatched."""
    own = model.state_dict()
    file_grid = token_grid(incoming)
    heads = _head_keys(model)
    statistics = input_statistics(incoming, own)
    audit.ignored_buffers = [f"{k} = {v}: input statistics; the harness normalises inputs with "
                             f"the dataset's" for k, v in statistics.items()]
    accepted: dict = {}
    for key, tensor in incoming.items():
        if key in statistics:
            continue
        if key not in own:
            audit.unexpected.append(key)
            continue
        target = own[key]
        problem = dense_problem(tensor)
        if problem:
            audit.shape_mismatched.append(f"{key}: file tensor {problem.split(':')[0]}")
            continue
        if tensor.shape != target.shape:
            adapted = _adapt(key, tensor, target, model, file_grid)
            if adapted is not None and adapted.shape == target.shape:
                audit.resampled.append(f"{key}: {tuple(tensor.shape)} -> {tuple(target.shape)}")
                tensor = adapted
            elif key in heads:
                audit.head_reinitialised.append(f"{key}: file {tuple(tensor.shape)}, "
                                                f"model {tuple(target.shape)}")
                continue
            else:
                audit.shape_mismatched.append(f"{key}: file {tuple(tensor.shape)}, "
                                              f"model {tuple(target.shape)}")
                continue
        accepted[key] = _as_dtype(tensor, target.dtype)
    for key in own:
        if key not in accepted and key in heads and not _head_skipped(key, audit):
            audit.head_reinitialised.append(f"{key}: absent from file")
    audit.missing = [k for k in own if k not in accepted and not _head_skipped(k, audit)]
    supplied = sum(own[k].numel() for k in accepted)
    audit.loaded = len(accepted)
    audit.fraction_supplied = supplied / max(1, sum(t.numel() for t in own.values()))
    return accepted


def _as_dtype(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return (tensor.dequantize() if tensor.is_quantized else tensor).to(dtype)


def _head_skipped(key: str, audit: LoadAudit) -> bool:
    return any(entry.startswith(key + ":") for entry in audit.head_reinitialised)


def fit_problems(audit: LoadAudit) -> list[str]:
    """Why a file does not fit the model, one entry per kind (empty: it loads fully): keys the
    file lacks (a shape-mismatched key is counted there only; a classifier head of another class
    count is not a problem), keys the model lacks (input statistics are not: they are listed as
    ignored buffers), shape-mismatched keys; three of each named. `load_init` refuses exactly
    these, and `harness inspect --arch` reports exactly these."""
    mismatched = {entry.split(":", 1)[0] for entry in audit.shape_mismatched}
    absent = [k for k in audit.missing if k not in mismatched]
    parts = []
    for label, keys in (("missing key(s) (they would stay at their init)", absent),
                        ("unexpected key(s) (the model has no place for them)", audit.unexpected),
                        ("shape-mismatched key(s)", audit.shape_mismatched)):
        if keys:
            shown = ", ".join(keys[:3]) + (f" (+{len(keys) - 3} more)" if len(keys) > 3 else "")
            parts.append(f"{len(keys)} {label}: {shown}")
    return parts
