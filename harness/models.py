"""Model factory: harness variants as data, timm names, and a user's factory by import path.

``create_model(name, num_classes, in_chans, image_size)`` is the one way in. Loading an init into
a model is :mod:`harness.checkpoint.loading` (``load_init``, re-exported here for the engine).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import timm
from torch import nn

from harness.checkpoint.loading import LoadAudit, ModelError, audit_keys, fit_problems, load_init
from harness.imports import ImportPathError, call_with, is_import_path, load_callable, source_digest

__all__ = ["MODELS", "LoadAudit", "ModelError", "Variant", "audit_keys", "check_model_name",
           "create_model", "fit_problems", "load_init", "model_definition", "native_image_size"]


@dataclass(frozen=True)
class Variant:
    """A harness model: a timm VisionTransformer with these keyword arguments."""

    timm_name: str
    kwargs: tuple          # sorted (key, value) pairs, so the variant stays hashable
    image_size: int
    description: str


def _variant(timm_name: str, image_size: int, description: str, **kwargs) -> Variant:
    return Variant(timm_name, tuple(sorted(kwargs.items())), image_size, description)


MODELS: dict[str, Variant] = {
    "vit_tiny_digits": _variant(
        "vit_tiny_patch16_224", 8,
        "ViT for 8x8 digits: patch 2 (16 tokens), dim 64, depth 4, 4 heads, MLP 256, mean-pooled",
        img_size=8, patch_size=2, embed_dim=64, depth=4, num_heads=4, mlp_ratio=4.0,
        global_pool="avg", class_token=False),
    "vit_micro_patch4_32": _variant(
        "vit_tiny_patch16_224", 32, "a micro ViT at 32x32 for CPU checks of the CIFAR path: "
        "patch 4, dim 64, depth 2, 2 heads", img_size=32, patch_size=4, embed_dim=64, depth=2,
        num_heads=2, mlp_ratio=2.0),
    "vit_small_patch4_32": _variant(
        "vit_small_patch16_224", 32, "ViT-S/4 at 32x32 (CIFAR): dim 384, depth 12, 6 heads",
        img_size=32, patch_size=4),
}

def native_image_size(name: str) -> Optional[int]:
    """The input size a model expects (None: any, the dataset's own; an import-path model takes
    the RunSpec's ``image_size`` or the dataset's)."""
    if is_import_path(name):
        return None
    if name in MODELS:
        return MODELS[name].image_size
    cfg = timm.models.get_pretrained_cfg(name) if timm.is_model(name) else None
    size = getattr(cfg, "input_size", None) if cfg is not None else None
    return int(size[-1]) if size else None


def model_definition(name: str) -> str:
    """What builds ``name``: the variant's arguments, or the timm version that defines it."""
    if is_import_path(name):
        return f"{name} source sha256 {source_digest(name)}"
    variant = MODELS.get(name)
    base = f"timm {timm.__version__}"
    return f"{base}: {variant.timm_name} {variant.kwargs}" if variant else f"{base}: {name}"


def check_model_name(name: str) -> None:
    if is_import_path(name):
        try:
            load_callable(name, "model")
        except ImportPathError as exc:
            raise ModelError(str(exc)) from None
        return
    if name not in MODELS and not timm.is_model(name):
        raise ModelError(f"unknown model {name!r}: use a harness model ({', '.join(MODELS)}), "
                         f"a timm model name (timm.list_models()) or your own factory as "
                         f"'package.module:function'")


def create_model(name: str, num_classes: int, in_chans: int = 3,
                 image_size: Optional[int] = None) -> nn.Module:
    """The model ``name`` names: a harness variant, a timm model, or a user's factory
    ``package.module:function`` called with ``num_classes``, ``image_size`` and ``in_chans``
    (those its signature accepts)."""
    check_model_name(name)
    if is_import_path(name):
        given = {"num_classes": num_classes, "image_size": image_size, "in_chans": in_chans}
        model = call_with(load_callable(name, "model"),
                          **{k: v for k, v in given.items() if v is not None})
        if not isinstance(model, nn.Module):
            raise ModelError(f"model {name!r} returned a {type(model).__name__}, not a torch "
                             f"nn.Module")
        return model
    if name in MODELS:
        variant = MODELS[name]
        return timm.create_model(variant.timm_name, pretrained=False, num_classes=num_classes,
                                 in_chans=in_chans, **dict(variant.kwargs))
    return timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_chans)
