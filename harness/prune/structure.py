"""Channels: the structures Refill and RSST keep or remove whole.

A :class:`Family` is a set of ``n`` channels spread over one or more weights. Each member weight
is viewed as ``(lead, n, trail)`` with the channel on axis 1, so one reduction serves every
layout:

- an attention head of any module that states its head count (``num_heads``, ``heads``, ...):
  its q, k and v rows of a fused qkv map (viewed ``(3, heads, head_dim * dim)``; or of separate
  q, k and v maps) and its columns of the output map (``(dim, heads, head_dim)``);
- an MLP hidden neuron of any module holding exactly two linear maps, the first feeding the
  second: its row of the first (``(1, hidden, dim)``) and its column of the second
  (``(dim, hidden, 1)``);

The layers are found from their shapes and order, never from their names, so timm's ViT, the
research group's ViT class and a ``transformer.layers.N`` layout are cut the same way.
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


HEAD_COUNT_ATTRS = ("num_heads", "heads", "n_heads", "n_head", "num_attention_heads")


def _linears(module: nn.Module, index: dict, prefix: str) -> list:
    """(weight key, nn.Linear) of every prunable Linear under ``module``, in module order."""
    return [(f"{full}.weight", sub) for full, sub in module.named_modules(prefix=prefix)
            if isinstance(sub, nn.Linear) and f"{full}.weight" in index]


def _head_count(module: nn.Module) -> Optional[int]:
    for attr in HEAD_COUNT_ATTRS:
        value = getattr(module, attr, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


@finder
def attention_heads(name: str, module: nn.Module, index: dict) -> list:
    """A module that states its head count and holds the projections: a fused qkv map
    (out = 3 x A) or separate q, k, v maps (out = A each), and an output map (in = A)."""
    heads = _head_count(module)
    if heads is None:
        return []
    linears = _linears(module, index, name)
    for i, (key, lin) in enumerate(linears):
        attn_dim, fused = lin.out_features // 3, lin.out_features % 3 == 0
        if fused and attn_dim % heads == 0:
            proj = next(((k, p) for k, p in linears[i + 1:] if p.in_features == attn_dim), None)
            if proj is not None:
                head_dim = attn_dim // heads
                return [Family(name, "head", heads, (
                    Member(index[key], 3, head_dim * lin.in_features),
                    Member(index[proj[0]], proj[1].out_features, head_dim)))]
        same = linears[i:i + 3]
        if len(same) == 3 and len({(m.out_features, m.in_features) for _, m in same}) == 1 \
                and lin.out_features % heads == 0:
            proj = next(((k, p) for k, p in linears[i + 3:] if p.in_features == lin.out_features), None)
            if proj is not None:
                head_dim = lin.out_features // heads
                members = tuple(Member(index[k], 1, head_dim * m.in_features) for k, m in same)
                return [Family(name, "head", heads, members + (
                    Member(index[proj[0]], proj[1].out_features, head_dim),))]
    return []


@finder
def mlp_neurons(name: str, module: nn.Module, index: dict) -> list:
    """A module holding exactly two prunable linear maps, the first feeding the second
    (dim -> hidden -> dim): its hidden neurons are the channels."""
    if not name or _head_count(module) is not None:
        return []
    linears = _linears(module, index, name)
    if len(linears) != 2:
        return []
    (k1, fc1), (k2, fc2) = linears
    if fc1.out_features != fc2.in_features:
        return []   # gated MLPs (fc1 holds two halves) are left to the output-channel fallback
    return [Family(name, "neuron", fc1.out_features, (Member(index[k1], 1, fc1.in_features),
                                                       Member(index[k2], fc2.out_features, 1)))]


def families(model: nn.Module, masks: MaskSet) -> list[Family]:
    """Every channel family of the prunable weights; each weight belongs to exactly one."""
    index = {n: i for i, n in enumerate(masks.names)}
    found: list[Family] = []
    covered: set = set()
    for name, module in model.named_modules():
        for fn in FINDERS:
            for family in fn(name, module, index):
                members = {m.index for m in family.members}
                if not members & covered:     # a wrapper found it first (parents come first)
                    found.append(family)
                    covered |= members
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


def unit_shares(fams: list[Family], masks: MaskSet) -> dict:
    """Fraction of the prunable weights in each kind of channel (head, neuron, channel), for a
    per-pool schedule's overall target (:meth:`harness.spec.PruneSpec.sparsity_at`)."""
    sizes: dict = {}
    for f in fams:
        sizes[f.unit] = sizes.get(f.unit, 0) + f.n * f.channel_size
    return {unit: size / masks.total for unit, size in sizes.items()}
