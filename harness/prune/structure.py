"""Channels: the structures Refill and RSST keep or remove whole.

A :class:`Family` is a set of ``n`` channels spread over one or more weights. Each member weight
is viewed as ``(lead, n, trail)`` with the channel on axis 1, so one reduction serves every
layout:

- an attention head of a timm ``Attention``: its q, k and v rows of ``qkv.weight``
  (viewed ``(3, heads, head_dim * dim)``) and its columns of ``proj.weight`` (``(dim, heads,
  head_dim)``);
- an MLP hidden neuron of a timm ``Mlp``: its row of ``fc1.weight`` (``(1, hidden, dim)``) and its
  column of ``fc2.weight`` (``(dim, hidden, 1)``);
- any other prunable weight (a CNN's convolution, a head asked for): an output channel
  (``(1, out, rest)``).

Finders are a registry (:data:`FINDERS`); every prunable weight ends up in exactly one family.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn

from harness.prune.masks import MaskSet


@dataclass(frozen=True)
class Member:
    index: int        # position of the weight in the MaskSet
    lead: int
    trail: int

    def view(self, tensor: torch.Tensor, n: int) -> torch.Tensor:
        return tensor.reshape(self.lead, n, self.trail)


@dataclass(frozen=True)
class Family:
    name: str         # module name, e.g. blocks.0.attn
    unit: str         # head, neuron, channel
    n: int
    members: tuple    # tuple[Member]

    @property
    def channel_size(self) -> int:
        """Weights in one channel (over all members)."""
        return sum(m.lead * m.trail for m in self.members)

    def reduce(self, tensors: list, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """Per-channel sum of ``fn(member view)`` over all members: shape (n,)."""
        return sum(fn(m.view(tensors[m.index], self.n)).sum(dim=(0, 2)) for m in self.members)

    def expand(self, keep: torch.Tensor, index: int, shape: torch.Size) -> torch.Tensor:
        """The mask of member weight ``index`` that keeps the channels where ``keep`` is 1."""
        member = next(m for m in self.members if m.index == index)
        return keep.view(1, self.n, 1).expand(member.lead, self.n, member.trail).reshape(shape)

    def channel_state(self, masks: list) -> tuple[torch.Tensor, torch.Tensor]:
        """(kept, removed): channels whose mask is all ones / all zeros."""
        kept_count = self.reduce(masks, lambda v: (v != 0).to(torch.float32))
        return kept_count == self.channel_size, kept_count == 0


Finder = Callable[[str, nn.Module, dict], list]   # (module name, module, weight index) -> [Family]
FINDERS: list = []


def finder(fn: Finder) -> Finder:
    FINDERS.append(fn)
    return fn


def _has_linear(module: nn.Module, *names: str) -> bool:
    return all(isinstance(getattr(module, n, None), nn.Linear) for n in names)


@finder
def attention_heads(name: str, module: nn.Module, index: dict) -> list:
    heads = getattr(module, "num_heads", None)
    if not (isinstance(heads, int) and _has_linear(module, "qkv", "proj")):
        return []
    qkv_key, proj_key = f"{name}.qkv.weight", f"{name}.proj.weight"
    if qkv_key not in index or proj_key not in index:
        return []
    qkv, proj = module.qkv.weight, module.proj.weight
    attn_dim = qkv.shape[0] // 3
    if qkv.shape[0] != 3 * attn_dim or attn_dim % heads or proj.shape[1] != attn_dim:
        return []
    head_dim = attn_dim // heads
    return [Family(name, "head", heads, (Member(index[qkv_key], 3, head_dim * qkv.shape[1]),
                                         Member(index[proj_key], proj.shape[0], head_dim)))]


@finder
def mlp_neurons(name: str, module: nn.Module, index: dict) -> list:
    if not _has_linear(module, "fc1", "fc2"):
        return []
    fc1_key, fc2_key = f"{name}.fc1.weight", f"{name}.fc2.weight"
    if fc1_key not in index or fc2_key not in index:
        return []
    fc1, fc2 = module.fc1.weight, module.fc2.weight
    if fc1.shape[0] != fc2.shape[1]:
        return []   # gated MLPs (fc1 holds two halves) are left to the output-channel fallback
    return [Family(name, "neuron", fc1.shape[0], (Member(index[fc1_key], 1, fc1.shape[1]),
                                                  Member(index[fc2_key], fc2.shape[0], 1)))]


def families(model: nn.Module, masks: MaskSet) -> list[Family]:
    """Every channel family of the prunable weights; each weight belongs to exactly one."""
    index = {n: i for i, n in enumerate(masks.names)}
    found: list[Family] = []
    for name, module in model.named_modules():
        for fn in FINDERS:
            found += fn(name, module, index)
    covered = {m.index for f in found for m in f.members}
    for i, (name, p) in enumerate(zip(masks.names, masks.params)):
        if i not in covered:
            out = p.shape[0]
            found.append(Family(name.rsplit(".", 1)[0], "channel", out, (Member(i, 1, p.numel() // out),)))
    return found


def summary(fams: list[Family], masks: list, weights: Optional[list] = None) -> dict:
    """Per family: channels left (all kept), removed (all zero) and partial, e.g. heads per block;
    with ``weights``, also the removed channels holding a weight that is not zero."""
    out = {}
    for f in fams:
        kept, removed = f.channel_state(masks)
        k, r = int(kept.sum()), int(removed.sum())
        out[f.name] = {"unit": f.unit, "total": f.n, "left": k, "removed": r, "partial": f.n - k - r}
        if weights is not None:
            nonzero = f.reduce(weights, lambda v: (v != 0).to(torch.float32)) > 0
            out[f.name]["removed_not_zero"] = int((removed & nonzero).sum())
    return out
