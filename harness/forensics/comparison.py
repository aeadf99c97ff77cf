"""Sharper evidence with ``--arch NAME``: compare each tensor with fresh inits of that
architecture, and audit loading the file into it.

Fresh copies are built with the architecture's own init functions under :data:`SEEDS`. A tensor
is at init when it equals one of them exactly, or when its statistics stay within the fresh
copies' range: std within :data:`STD_TOLERANCE` (relative) of theirs, top singular value and
kurtosis no further above theirs than the random-matrix limits of :mod:`evidence` allow. A
tensor that fresh inits leave constant (norm weight 1, bias 0) is trained once it differs.

The load audit says what loading the file (prefixes stripped) into the model would do: missing,
unexpected and shape-mismatched keys, the share of the model's parameters the file supplies, a
prefix that would make the keys match. A load that leaves any backbone tensor at its init (the
``strict=False`` trap, a ``model.`` vs ``encoder.`` prefix mismatch) fails.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import torch

from harness.checkpoint.layout import describe_layout
from harness.checkpoint.loading import LoadAudit, audit_keys, fit_problems
from harness.checkpoint.reader import LoadedCheckpoint
from harness.checkpoint.tensors import JUDGED_DTYPES
from harness.forensics.evidence import (CONSTANT_TOLERANCE, KIND_CONSTANT, KIND_MATRIX,
                                        KIND_OTHER, TensorEvidence, tensor_evidence)
from harness.models import create_model
from harness.threads import cpu_threads

SEEDS = (0, 1, 2)
STD_TOLERANCE = 0.10     # a changed scale: weight decay shrinks, learning grows; nudges do neither
# Sizes a file may ask the fresh models for: ImageNet-21k has 21,843 classes; stems of
# multispectral inputs a few dozen channels. A hostile file's (1e9 x 0) head asks for more.
MAX_CLASSES = 100_000
MAX_IN_CHANS = 256
STEM_PREFIXES = ("patch_embed.", "stem", "conv_stem.", "conv1.", "features.0.")


def compare_with_arch(ckpt: LoadedCheckpoint, evidence: list, arch: str,
                      num_classes: Optional[int]) -> tuple[list, dict]:
    """The evidence compared with fresh inits of ``arch``, and the load audit. Sizes the file
    asks for (its head's class count, its stem's input channels) come from non-empty tensors
    and stay under :data:`MAX_CLASSES` / :data:`MAX_IN_CHANS`; otherwise, or when the model
    cannot be built, the evidence stands alone and the audit fails with the reason."""
    sizes = model_sizes(ckpt.tensors, num_classes)
    if isinstance(sizes, str):
        return evidence, refused_audit(ckpt, arch, sizes)
    num_classes, in_chans = sizes
    models = []
    with cpu_threads(1):
        try:
            for seed in SEEDS:
                torch.manual_seed(seed)
                models.append(create_model(arch, num_classes=num_classes, in_chans=in_chans))
        except (RuntimeError, ValueError, TypeError, AssertionError) as exc:
            return evidence, refused_audit(ckpt, arch, (
                f"timm could not build {arch} with {num_classes} classes and {in_chans} input "
                f"channel(s) ({type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:160]})"))
        fresh = [m.state_dict() for m in models]
        compared = [_compare(item, ckpt.tensors[item.name], fresh) for item in evidence]
    return compared, load_audit(ckpt, models[0], arch, num_classes, in_chans)


def model_sizes(tensors: dict, num_classes: Optional[int]):
    """(classes, input channels) for the fresh models, or why the file's sizes are refused."""
    if num_classes is not None and not 1 <= num_classes <= MAX_CLASSES:
        return f"--num-classes {num_classes} is outside 1..{MAX_CLASSES}"
    head = _file_classes(tensors)
    if num_classes is None and head is not None and head[1] > MAX_CLASSES:
        return (f"the file's {head[0]} {tuple(tensors[head[0]].shape)} asks for a {head[1]}-class "
                f"head, more than {MAX_CLASSES}; pass --num-classes to compare with another head")
    stem = _file_in_chans(tensors)
    if stem is not None and stem[1] > MAX_IN_CHANS:
        return (f"the file's {stem[0]} {tuple(tensors[stem[0]].shape)} asks for {stem[1]} input "
                f"channels, more than {MAX_IN_CHANS}")
    return (num_classes or (head[1] if head else 1000)), (stem[1] if stem else 3)


def refused_audit(ckpt: LoadedCheckpoint, arch: str, reason: str) -> dict:
    """A failed load audit that says why no model was compared."""
    return {"source": ckpt.path, "arch": arch, "passed": False, "problem": reason,
            "summary": f"not run: {reason}", "seeds_compared": []}


def _compare(item: TensorEvidence, tensor: torch.Tensor, fresh: list) -> TensorEvidence:
    copies = [f[item.name] for f in fresh if item.name in f and f[item.name].shape == tensor.shape]
    if not copies or item.note or item.kind not in (KIND_MATRIX, KIND_CONSTANT, KIND_OTHER) \
            or tensor.dtype not in JUDGED_DTYPES:
        return item
    values = tensor.float()
    for seed, copy in zip(SEEDS, copies):
        if item.kind != KIND_CONSTANT and torch.equal(values, copy.to(tensor.dtype).float()):
            return dataclasses.replace(item, arch_trained=False,
                                       reference={"equals_fresh_init_seed": seed})
    refs = [tensor_evidence(item.name, c) for c in copies]
    if all(r.kind == KIND_CONSTANT for r in refs):
        moved = float((values - refs[0].constant).pow(2).mean().sqrt())
        return dataclasses.replace(item, arch_trained=moved > CONSTANT_TOLERANCE,
                                   reference={"fresh_init_constant": refs[0].constant,
                                              "rms_change": round(moved, 6)})
    stds = [float(c.float().std()) for c in copies]
    std = float(values.std())
    init_std = sum(stds) / len(stds)
    reference = {"fresh_init_std": round(init_std, 6),
                 "std_over_init": round(std / init_std, 4) if init_std else None}
    changed = init_std > 0 and abs(std / init_std - 1) > STD_TOLERANCE
    if item.kind == KIND_MATRIX and all(r.kind == KIND_MATRIX for r in refs):
        reference["fresh_sv_ratio_max"] = round(max(r.sv_ratio for r in refs), 4)
        reference["fresh_kurtosis_max"] = round(max(r.kurtosis for r in refs), 4)
        changed = changed or _beyond(item, refs)
    return dataclasses.replace(item, arch_trained=changed, reference=reference)


def _beyond(item: TensorEvidence, refs: list) -> bool:
    """Above the fresh copies by more than the random-matrix margin of this shape."""
    sv_margin = item.sv_limit - 1.0
    kurt_margin = item.kurtosis_limit - 3.0
    return (item.sv_ratio > max(r.sv_ratio for r in refs) + sv_margin
            or item.kurtosis > max(r.kurtosis for r in refs) + kurt_margin)


def load_audit(ckpt: LoadedCheckpoint, model: torch.nn.Module, arch: str, num_classes: int,
               in_chans: int) -> dict:
    own = model.state_dict()
    audit = LoadAudit(source=ckpt.path, container=ckpt.container,
                      stripped_prefixes=list(ckpt.stripped_prefixes))
    audit_keys(model, ckpt.tensors, audit)
    problems = fit_problems(audit)           # exactly what load_init would refuse
    if audit.shape_mismatched:
        problems.insert(0, f"the file does not fit {arch}: it holds "
                           f"{describe_layout(ckpt.tensors)}; {arch} needs {describe_layout(own)}")
    prefix = _prefix_needed(list(ckpt.tensors), list(own)) if problems else None
    if prefix:
        problems.append(f"the keys match after {prefix}")
    data = audit.to_dict()
    data.update({"arch": arch, "num_classes": num_classes, "in_chans": in_chans,
                 "passed": not problems, "problem": "; ".join(problems) or None,
                 "prefix_needed": prefix, "seeds_compared": list(SEEDS)})
    data["summary"] = (f"{audit.loaded}/{len(own)} model tensors supplied "
                       f"({100 * audit.fraction_supplied:.1f}% of parameters), "
                       f"{len(audit.missing)} missing, {len(audit.unexpected)} unexpected, "
                       f"{len(audit.shape_mismatched)} shape-mismatched"
                       + (f"; FAILS: {data['problem']}" if problems else "; loads fully"))
    return data


def _prefix_needed(file_keys: list, model_keys: list) -> Optional[str]:
    wanted = set(model_keys)
    firsts = {k.split(".", 1)[0] + "." for k in file_keys if "." in k}
    for prefix in sorted(firsts):
        stripped = {k[len(prefix):] for k in file_keys if k.startswith(prefix)}
        if len(stripped & wanted) > len(set(file_keys) & wanted) and stripped & wanted:
            return f"stripping {prefix!r} from the file's keys"
    model_firsts = {k.split(".", 1)[0] + "." for k in model_keys if "." in k}
    keys = set(file_keys)
    for prefix in sorted(model_firsts):
        if len({prefix + k for k in keys} & wanted) > len(keys & wanted):
            return f"adding {prefix!r} to the file's keys"
    return None


def _file_classes(tensors: dict) -> Optional[tuple[str, int]]:
    """(key, rows) of the file's classifier head; empty tensors never decide."""
    for key in ("head.weight", "head.fc.weight", "fc.weight", "classifier.weight"):
        tensor = tensors.get(key)
        if tensor is not None and tensor.ndim == 2 and tensor.numel() > 0:
            return key, int(tensor.shape[0])
    return None


def _file_in_chans(tensors: dict) -> Optional[tuple[str, int]]:
    """(key, input channels) of the stem: the first non-empty convolution named like one
    (safetensors lists keys sorted, so a depthwise kernel can come first), else the first."""
    kernels = [(k, t) for k, t in tensors.items() if t.ndim == 4 and t.numel() > 0]
    stems = [(k, t) for k, t in kernels if k.startswith(STEM_PREFIXES)]
    for key, tensor in stems + kernels:
        return key, int(tensor.shape[1])
    return None
