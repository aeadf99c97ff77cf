"""What a state dict is shaped for, read from its tensor shapes alone: a ViT's position tokens
(prefix tokens plus a square patch grid), width, patch kernel and depth, or a head's class count.

Used to decide whether a position embedding can be resampled to another model's grid (only when
its own grid is square and the widths match) and to say in one line why a file does not fit a
model ("197 position tokens (1 prefix + 14x14 grid), width 384, ...").
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Optional

import torch

PREFIX_TOKEN_KEYS = ("cls_token", "dist_token", "reg_token")
_BLOCK = re.compile(r"^blocks\.(\d+)\.")


@dataclass(frozen=True)
class TokenGrid:
    """A position embedding of ``tokens`` rows: ``prefix`` class/register tokens, then a square
    ``side`` x ``side`` patch grid (``side`` None: no square grid after the prefix)."""

    tokens: int
    prefix: int
    side: Optional[int]
    width: int

    def words(self) -> str:
        if self.side is None:
            return (f"{self.tokens} position tokens (no square grid after {self.prefix} prefix "
                    f"token(s)), width {self.width}")
        return (f"{self.tokens} position tokens ({self.prefix} prefix + {self.side}x{self.side} "
                f"grid), width {self.width}")


def prefix_tokens(state: dict) -> int:
    """Class, distillation and register tokens the state dict carries (cls_token 1 x 1 x D, ...)."""
    count = 0
    for key in PREFIX_TOKEN_KEYS:
        tensor = state.get(key)
        if isinstance(tensor, torch.Tensor) and tensor.numel() > 0:
            count += int(tensor.shape[1]) if tensor.ndim == 3 else 1
    return count


def token_grid(state: dict, key: str = "pos_embed") -> Optional[TokenGrid]:
    """The grid of ``state[key]`` (1 x tokens x width). The prefix tokens are the file's own;
    a file whose position embedding leaves them out (timm's ``no_embed_class``) has a square
    token count, and then none of them is in it."""
    pos = state.get(key)
    if not isinstance(pos, torch.Tensor) or pos.ndim != 3 or pos.numel() == 0:
        return None
    tokens, width = int(pos.shape[1]), int(pos.shape[2])
    own = prefix_tokens(state)
    for prefix in dict.fromkeys((own, 0)):
        side = _square_side(tokens - prefix)
        if side:
            return TokenGrid(tokens, prefix, side, width)
    return TokenGrid(tokens, own, None, width)


def _square_side(n: int) -> Optional[int]:
    if n <= 0:
        return None
    side = math.isqrt(n)
    return side if side * side == n else None


def describe_layout(state: dict) -> str:
    """One phrase: the token grid, patch kernel, depth and head of a ViT-like state dict, or the
    tensor count and largest tensor of anything else."""
    parts = []
    grid = token_grid(state)
    if grid is not None:
        parts.append(grid.words())
    patch = state.get("patch_embed.proj.weight")
    if isinstance(patch, torch.Tensor) and patch.ndim == 4:
        parts.append(f"patch {patch.shape[2]}x{patch.shape[3]} over {patch.shape[1]} channel(s)")
    depth = {m.group(1) for m in (_BLOCK.match(k) for k in state if isinstance(k, str)) if m}
    if depth:
        parts.append(f"{len(depth)} blocks")
    head = state.get("head.weight")
    if isinstance(head, torch.Tensor) and head.ndim == 2:
        parts.append(f"a {head.shape[0]}-class head")
    if not parts:
        tensors = [v for v in state.values() if isinstance(v, torch.Tensor)]
        largest = max(tensors, key=lambda t: t.numel(), default=None)
        shape = f", largest {tuple(largest.shape)}" if largest is not None else ""
        parts.append(f"{len(tensors)} tensors{shape}")
    return ", ".join(parts)
