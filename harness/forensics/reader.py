"""Safe reading of checkpoint files: safetensors, or torch pickles with ``weights_only=True``.

Finds the state dict inside common containers and strips wrapper prefixes, reporting both.
Nothing in a file is executed: torch's weights-only unpickler refuses any global it does not
know, and that refusal is reported as :class:`UnsafeCheckpoint` naming the global.
"""
from __future__ import annotations

import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from harness.forensics.pickle_scan import blocked_global

TORCH_SUFFIXES = (".pth", ".pth.tar", ".pt", ".bin", ".ckpt", ".tar")
CONTAINER_KEYS = ("state_dict", "model", "state_dict_ema", "model_ema", "module")
EMA_KEYS = ("state_dict_ema", "model_ema")
PREFIXES = ("module.", "_orig_mod.", "model.")


class CheckpointError(RuntimeError):
    """The file cannot be read as a checkpoint; ``reason`` says why."""


class UnreadableCheckpoint(CheckpointError):
    pass


class UnsafeCheckpoint(CheckpointError):
    def __init__(self, message: str, blocked: str) -> None:
        super().__init__(message)
        self.blocked = blocked


@dataclass
class LoadedCheckpoint:
    path: str
    tensors: dict                        # name -> torch.Tensor, prefixes stripped
    container: str                       # "top level" or the key used
    stripped_prefixes: list = field(default_factory=list)
    has_ema: bool = False
    metadata: dict = field(default_factory=dict)


def is_checkpoint_path(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(".safetensors") or name.endswith(TORCH_SUFFIXES)


def read_checkpoint(path: str | Path) -> LoadedCheckpoint:
    path = Path(path)
    if not path.is_file():
        raise UnreadableCheckpoint(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise UnreadableCheckpoint(f"{path}: empty file (0 bytes)")
    if path.name.lower().endswith(".safetensors"):
        raw, metadata = _read_safetensors(path)
    else:
        raw = _read_torch(path)
        metadata = _scalars(raw)
    state, container, has_ema = _find_state_dict(raw, path)
    tensors, stripped = strip_prefixes(state)
    return LoadedCheckpoint(str(path), tensors, container, stripped, has_ema, metadata)


def _scalars(raw: object) -> dict:
    """Plain fields of a torch container (epoch, arch, pretrained, ...): its metadata."""
    if not isinstance(raw, dict):
        return {}
    return {str(k): v for k, v in raw.items() if isinstance(v, (str, int, float, bool))}


def _read_safetensors(path: Path) -> tuple[dict, dict]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
            return {k: handle.get_tensor(k) for k in handle.keys()}, metadata
    except (SafetensorError, OSError, ValueError) as exc:
        raise UnreadableCheckpoint(f"{path}: not a readable safetensors file ({exc})") from None


_GLOBAL = re.compile(r"(?:GLOBAL|global)\s+([\w.]+)")


def _read_torch(path: Path) -> object:
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True, mmap=_is_zip(path))
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Weights only load failed" in text or "Unsupported global" in text:
            match = _GLOBAL.search(text)
            blocked = blocked_global(path) or (match.group(1) if match else None)
            if blocked:
                raise UnsafeCheckpoint(f"{path}: the pickle would import or call {blocked}; "
                                       f"refused without running it", blocked) from None
        raise UnreadableCheckpoint(f"{path}: not a torch checkpoint ({_first_line(text)})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, AttributeError,
            IndexError, KeyError, TypeError) as exc:
        raise UnreadableCheckpoint(f"{path}: cannot be read as a torch checkpoint "
                                   f"({type(exc).__name__}: {_first_line(str(exc))})") from None


def _is_zip(path: Path) -> bool:
    return zipfile.is_zipfile(path)


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:200]


def _find_state_dict(raw: object, path: Path) -> tuple[dict, str, bool]:
    if not isinstance(raw, dict):
        raise UnreadableCheckpoint(f"{path}: holds a {type(raw).__name__}, not a state dict")
    has_ema = any(isinstance(raw.get(k), dict) for k in EMA_KEYS)
    if _is_state_dict(raw):
        return raw, "top level", has_ema
    for key in CONTAINER_KEYS:
        value = raw.get(key)
        if isinstance(value, dict) and _is_state_dict(value):
            return value, key, has_ema
    raise UnreadableCheckpoint(f"{path}: no tensors found at the top level or under "
                               f"{', '.join(CONTAINER_KEYS)} (keys: {', '.join(map(str, list(raw)[:8]))})")


def _is_state_dict(d: dict) -> bool:
    return bool(d) and any(isinstance(v, torch.Tensor) for v in d.values())


def strip_prefixes(state: dict) -> tuple[dict, list]:
    """Strip wrapper prefixes shared by every tensor key (DataParallel, torch.compile, Lightning)."""
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    stripped: list = []
    changed = True
    while changed and tensors:
        changed = False
        for prefix in PREFIXES:
            if all(k.startswith(prefix) for k in tensors):
                tensors = {k[len(prefix):]: v for k, v in tensors.items()}
                stripped.append(prefix)
                changed = True
    return tensors, stripped
