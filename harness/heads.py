"""The one way the harness finds a model's classifier head.

A model that says where its head is (timm's ``get_classifier()``) is taken at its word.
Otherwise the head is found from the structure, not from names: the last linear map (an
``nn.Linear``, or a 1x1 convolution) in module order whose output size is the class count (or
the last linear map at all when the class count is unknown). The pruning masks leave it out, the
init loader lets it differ in class count, and the load audit names it. A state dict without its
model (``harness inspect``) gets the same rule from its tensor shapes (:func:`state_dict_head`).
"""
from __future__ import annotations

from typing import Optional

from torch import nn


def _linear_map(module: nn.Module) -> Optional[int]:
    """Output size of a linear map (Linear, or a 1x1 convolution), else None."""
    if isinstance(module, nn.Linear):
        return module.out_features
    if isinstance(module, nn.Conv2d) and tuple(module.kernel_size) == (1, 1):
        return module.out_channels
    return None


def classifier_modules(model: nn.Module, num_classes: Optional[int] = None) -> set[str]:
    """Module names of the classifier head (a set: empty when the model has none)."""
    getter = getattr(model, "get_classifier", None)
    if callable(getter):
        head = getter()
        if isinstance(head, nn.Module):
            names = {n for n, m in model.named_modules() if m is head}
            inner = {f"{n}.{c}" if n else c for n in names for c, m in head.named_modules()
                     if c and _linear_map(m) is not None}
            return names | inner
    num_classes = num_classes or getattr(model, "num_classes", None)
    found = None
    for name, module in model.named_modules():
        out = _linear_map(module)
        if out is not None and (not isinstance(num_classes, int) or out == num_classes):
            found = name
    return {found} if found else set()


def classifier_keys(model: nn.Module, num_classes: Optional[int] = None) -> set[str]:
    """State-dict keys (weight, bias) of the classifier head."""
    heads = classifier_modules(model, num_classes)
    return {f"{m}.{p}" if m else p for m in heads for p, _ in
            dict(model.named_modules())[m].named_parameters(recurse=False)}


def _map_out(shape: tuple) -> Optional[int]:
    """Output size of a weight shaped as a linear map: [out, in] or a 1x1 kernel [out, in, 1, 1]."""
    if len(shape) == 2 or (len(shape) == 4 and tuple(shape[2:]) == (1, 1)):
        return int(shape[0])
    return None


def state_dict_head(shapes: dict, num_classes: Optional[int] = None) -> Optional[str]:
    """The classifier head of a state dict without its model: the module (key less ``.weight``)
    of the last linear-map weight in key order (state dicts keep module order) whose output size
    is ``num_classes``, or the last one at all when the class count is unknown. ``shapes`` maps
    keys to tensor shapes. None when no weight is shaped as a linear map."""
    found = None
    for key, shape in shapes.items():
        if not str(key).endswith("weight"):
            continue
        out = _map_out(tuple(shape))
        if out is not None and out > 1 and (not num_classes or out == num_classes):
            found = str(key)[: -len("weight")].rstrip(".")
    return found
