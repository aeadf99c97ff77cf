"""Channels of a stored run's prunable weights: attention heads and MLP neurons, as
:class:`harness.prune.structure.Family` objects over the run's prunable weight names.

From the model when its import path is given (``harness.prune.structure.families`` on the model
built on the meta device); otherwise from the weights' names and shapes: a module holding
``qkv`` (3A x D) and ``proj`` (D x A) is an attention layer whose head count comes from the run's
log (``Keeping k/H heads``), a module holding ``fc1`` (H x D) and ``fc2`` (D x H) an MLP of H
neurons; any other prunable weight is one family of output channels.

Also the two channel measures of the checks: the channel summary (left, removed, partly pruned,
removed but not zero) and the RMS of the channels a magnitude criterion would remove over the
RMS of those it keeps.
"""
from __future__ import annotations

import math
from typing import Optional

import torch

from harness.prune.structure import Family, Member, summary
from harness.runfolder.claims import Pools


def key_families(names: list, shapes: dict, heads: dict) -> tuple[list, list]:
    """(families, attention modules whose head count is unknown) from names and shapes."""
    index = {n: i for i, n in enumerate(names)}
    found, covered, unknown = [], set(), []
    modules = {n.rsplit(".", 2)[0] for n in names if n.count(".") >= 2}
    for module in sorted(modules, key=lambda m: min(index.get(f"{m}.{c}.weight", 1 << 30)
                                                    for c in ("qkv", "proj", "fc1", "fc2"))):
        family = _attention(module, index, shapes, heads, unknown) or _mlp(module, index, shapes)
        if family is not None:
            found.append(family)
            covered |= {m.index for m in family.members}
    for i, name in enumerate(names):
        if i not in covered:
            out = shapes[name][0]
            found.append(Family(name.rsplit(".", 1)[0], "channel", out,
                                (Member(i, 1, math.prod(shapes[name]) // out),)))
    return found, unknown


def _attention(module: str, index: dict, shapes: dict, heads: dict, unknown: list) -> Optional[Family]:
    qkv, proj = f"{module}.qkv.weight", f"{module}.proj.weight"
    if qkv not in index or proj not in index:
        return None
    (three_a, dim), (_, attn_dim) = shapes[qkv], shapes[proj]
    count = heads.get(module)
    if three_a != 3 * attn_dim or not count or attn_dim % count:
        unknown.append(module)
        return None
    head_dim = attn_dim // count
    return Family(module, "head", count, (Member(index[qkv], 3, head_dim * dim),
                                          Member(index[proj], shapes[proj][0], head_dim)))


def _mlp(module: str, index: dict, shapes: dict) -> Optional[Family]:
    fc1, fc2 = f"{module}.fc1.weight", f"{module}.fc2.weight"
    if fc1 not in index or fc2 not in index or shapes[fc1][0] != shapes[fc2][1]:
        return None
    hidden = shapes[fc1][0]
    return Family(module, "neuron", hidden, (Member(index[fc1], 1, shapes[fc1][1]),
                                             Member(index[fc2], shapes[fc2][0], 1)))


def model_heads(model) -> dict:
    """Head count of every attention module of a built model (``num_heads`` and kin)."""
    from harness.prune.masks import MaskSet
    from harness.prune.structure import families

    masks = MaskSet.dense(model)
    return {f.name: f.n for f in families(model, masks) if f.unit == "head"}


def pools(families: list, shapes: dict, names: list) -> Pools:
    total = sum(math.prod(shapes[n]) for n in names)
    by_unit: dict = {}
    for f in families:
        weights, channels, layers = by_unit.get(f.unit, (0, 0, 0))
        by_unit[f.unit] = (weights + f.channel_size * f.n, channels + f.n, layers + 1)
    attention, heads, layers = by_unit.get("head", (0, 0, 1))
    mlp, neurons, _ = by_unit.get("neuron", (0, 0, 0))
    return Pools(total=total, attention=attention, heads=heads, mlp=mlp, neurons=neurons,
                 layers=max(1, layers))


def channel_summary(families: list, names: list, masks: dict, weights: dict) -> dict:
    return summary(families, [masks[n] for n in names], [weights[n] for n in names])


def removable_ratio(families: list, names: list, weights: dict, rates: dict) -> Optional[dict]:
    """RMS of the channels a global magnitude criterion removes (the lowest L1 norms, ``rates``
    of each unit's pool: ``{"head": 0.7, "neuron": 0.7}``) over the RMS of those it keeps."""
    tensors = [weights[n] for n in names]
    removed_sq = removed_n = kept_sq = kept_n = 0.0
    for unit, rate in rates.items():
        fams = [f for f in families if f.unit == unit]
        if not fams or rate <= 0:
            continue
        l1 = torch.cat([f.reduce(tensors, torch.abs) for f in fams])
        sq = torch.cat([f.reduce(tensors, torch.square) for f in fams])
        size = torch.cat([torch.full((f.n,), float(f.channel_size)) for f in fams])
        keep = max(1, int(len(l1) * (1 - rate)))
        order = torch.argsort(l1, descending=True)
        kept, removed = order[:keep], order[keep:]
        kept_sq, kept_n = kept_sq + float(sq[kept].sum()), kept_n + float(size[kept].sum())
        removed_sq, removed_n = removed_sq + float(sq[removed].sum()), removed_n + float(size[removed].sum())
    if not removed_n or not kept_n or not kept_sq:
        return None
    removed_rms, kept_rms = math.sqrt(removed_sq / removed_n), math.sqrt(kept_sq / kept_n)
    return {"ratio": removed_rms / kept_rms, "removed_rms": removed_rms, "kept_rms": kept_rms,
            "removed_weights": int(removed_n), "kept_weights": int(kept_n)}
