"""Model factory: harness variants as data, timm names, and a user's factory by import path.

``create_model(name, num_classes, in_chans, image_size)`` is the one way in. Loading an init into
a model is :mod:`harness.checkpoint.loading` (``load_init``, re-exported here for the engine).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import timm
import torch
from torch import nn

from harness.checkpoint.loading import LoadAudit, ModelError, audit_keys, fit_problems, load_init
from harness.imports import (ImportPathError, call_factory, is_import_path, load_callable,
                             source_digest)

__all__ = ["MODELS", "LoadAudit", "ModelError", "Variant", "audit_keys", "check_model_name",
           "create_model", "create_skeleton", "fit_problems", "load_init", "model_definition", "native_image_size"]


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


@dataclass(frozen=True)
class Source:
    """Where a model name leads: what builds it, its native input size and its definition (what
    keys its runs in the store, so an edited definition never reuses a stale run)."""

    build: Callable[..., nn.Module]        # (num_classes, in_chans, image_size) -> module
    image_size: Optional[int]
    definition: str


def _factory(name: str) -> Optional[Source]:
    if not is_import_path(name):
        return None
    try:
        fn = load_callable(name, "model")
    except ImportPathError as exc:
        raise ModelError(str(exc)) from None

    def build(num_classes, in_chans, image_size):
        given = {"num_classes": num_classes, "image_size": image_size, "in_chans": in_chans}
        try:
            model = call_factory(fn, name, "model", **{k: v for k, v in given.items() if v is not None})
        except ImportPathError as exc:
            raise ModelError(str(exc)) from None
        if not isinstance(model, nn.Module):
            raise ModelError(f"model {name!r} returned a {type(model).__name__}, not a torch "
                             f"nn.Module")
        return model
    return Source(build, None, f"{name} source sha256 {source_digest(name)}")


def _harness_variant(name: str) -> Optional[Source]:
    variant = MODELS.get(name)
    if variant is None:
        return None
    return Source(lambda num_classes, in_chans, image_size: timm.create_model(
        variant.timm_name, pretrained=False, num_classes=num_classes, in_chans=in_chans,
        **dict(variant.kwargs)), variant.image_size,
        f"timm {timm.__version__}: {variant.timm_name} {variant.kwargs}")


def _timm(name: str) -> Optional[Source]:
    if not timm.is_model(name):
        return None
    size = getattr(timm.models.get_pretrained_cfg(name), "input_size", None)
    return Source(lambda num_classes, in_chans, image_size: timm.create_model(
        name, pretrained=False, num_classes=num_classes, in_chans=in_chans),
        int(size[-1]) if size else None, f"timm {timm.__version__}: {name}")


LOOKUPS: tuple[Callable[[str], Optional[Source]], ...] = (_factory, _harness_variant, _timm)


def lookup(name: str) -> Source:
    """The one model lookup: a user's factory by import path, a harness variant, a timm name."""
    for find in LOOKUPS:
        source = find(name)
        if source is not None:
            return source
    raise ModelError(f"unknown model {name!r}: use a harness model ({', '.join(MODELS)}), a timm "
                     f"model name (timm.list_models()) or your own factory as "
                     f"'package.module:function'")


def native_image_size(name: str) -> Optional[int]:
    """The input size a model expects (None: any, the dataset's own)."""
    return lookup(name).image_size


def model_definition(name: str) -> str:
    return lookup(name).definition


def check_model_name(name: str) -> None:
    lookup(name)


def create_model(name: str, num_classes: int, in_chans: int = 3,
                 image_size: Optional[int] = None) -> nn.Module:
    """The model ``name`` names, built for ``num_classes`` and ``in_chans`` (and, for a user's
    factory, ``image_size``: it is called with those its signature accepts)."""
    return lookup(name).build(num_classes, in_chans, image_size)


def create_skeleton(name: str, num_classes: int, in_chans: int = 3,
                    image_size: Optional[int] = None) -> nn.Module:
    """The model ``name`` names with no weights (built on the meta device), for its layout: the
    factory's module is imported first, outside the meta device, so its module-level tensors
    hold data; only the construction runs on meta."""
    source = lookup(name)
    with torch.device("meta"):
        return source.build(num_classes, in_chans, image_size)
