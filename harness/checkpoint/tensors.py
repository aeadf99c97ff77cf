"""What a tensor read from a file really holds, checked before anything touches its values:
whether it is dense (sparse and meta tensors hold no readable values), how many elements its
storage has (a broadcast view of 18 KB can claim 3.7 GB), and whether its dtype carries values
worth judging."""
from __future__ import annotations

from typing import Optional

import torch

# Values judged (quantized tensors are judged dequantized); integer, boolean, complex and
# scale-only formats (float8_e8m0fnu, packed float4) carry no weight statistics.
_FLOAT8 = ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz")
JUDGED_DTYPES = frozenset([torch.float16, torch.bfloat16, torch.float32, torch.float64]
                          + [getattr(torch, n) for n in _FLOAT8 if hasattr(torch, n)])


def dense_problem(tensor: torch.Tensor) -> Optional[str]:
    """Why ``tensor`` holds no dense values to read (None when it does)."""
    if tensor.layout != torch.strided:
        return (f"has layout {str(tensor.layout).replace('torch.', '')}: the evidence reads "
                f"dense tensors (save it with .to_dense())")
    if tensor.is_meta:
        return "is on the meta device: the file holds no values for it"
    return None


def storage_elements(tensor: torch.Tensor) -> int:
    """Elements the tensor's storage holds: a view with more elements repeats some of them."""
    return tensor.untyped_storage().nbytes() // max(1, tensor.element_size())
