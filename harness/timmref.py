"""A ``timm:NAME`` reference: timm's hub weights of model NAME, named where a file could be.

An init (``--harness-init``, ``harness run --init``, a log's arguments, a run's spec) is either a
checkpoint file or ``timm:NAME``; this module is the one place that tells them apart. It imports
nothing heavy: the plugin reads options at startup.
"""
from __future__ import annotations

from typing import Optional

PREFIX = "timm:"


class TimmRefError(ValueError):
    """``timm:`` with no model name; the message is one line saying what to write."""


def timm_name(value: Optional[str]) -> Optional[str]:
    """The timm model name of ``timm:NAME``; None for anything else (a file's path, None).

    Raises :class:`TimmRefError` for ``timm:`` with no name after it."""
    if value is None or not value.startswith(PREFIX):
        return None
    name = value[len(PREFIX):].strip()
    if not name:
        raise TimmRefError(f"{value!r} names no model: write timm:NAME with a timm model name, "
                           f"e.g. timm:vit_small_patch16_224, or pass a checkpoint file")
    return name


def timm_ref(name: str) -> str:
    """The ``timm:NAME`` reference of timm model ``name``."""
    return PREFIX + name
