"""Safe reading of checkpoint files: safetensors, or torch pickles with ``weights_only=True``.

Finds the state dict inside common containers and strips wrapper prefixes, reporting both.
Nothing in a file is executed: torch's weights-only unpickler refuses any global it does not
know, and that refusal is reported as :class:`UnsafeCheckpoint` naming the global (see
:mod:`pickle_scan`).

A file is opened once, by descriptor, and read through that descriptor (its ``/proc/self/fd``
name for torch and safetensors), so a name that is not UTF-8 reads like any other and the file
judged is the file opened. Hostile sizes are refused before anything large is allocated: a
pickle (a zip's data.pkl, a legacy file's pickles) over :data:`MAX_PICKLE_BYTES`, compressed zip
members that would expand past :data:`MAX_EXPANDED_BYTES`, more than :data:`MAX_ZIP_MEMBERS`
members or :data:`MAX_TENSORS` tensors. Views that repeat their storage are judged by
:mod:`evidence` without copying them.
"""
from __future__ import annotations

import os
import pickle
import pickletools
import stat
import struct
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Optional, Union

import torch

from harness.checkpoint.pickle_scan import (pickles_fit, refused_global, scan_globals,
                                           unsafe_globals)

TORCH_SUFFIXES = (".pth", ".pth.tar", ".pt", ".bin", ".ckpt", ".tar")
CONTAINER_KEYS = ("state_dict", "model", "state_dict_ema", "model_ema", "module")
EMA_KEYS = ("state_dict_ema", "model_ema")
PREFIXES = ("module.", "_orig_mod.", "model.")
# A torch file's pickle (data.pkl; a legacy file's five pickles): 10,000 tensors need ~2 MB.
# torch's unpickler spends about 9 bytes of memory and 0.4 us per byte of a hostile one.
MAX_PICKLE_BYTES = 32 << 20
LEGACY_PICKLES = 5               # magic number, protocol, system info, the object, storage keys
MAX_EXPANDED_BYTES = 64 << 20    # compressed zip members in all (torch.save stores them plain)
MAX_ZIP_MEMBERS = 1_000_000      # a torch zip holds one member per storage plus a few
MAX_TENSORS = 1_000_000          # tensors in one file

PathLike = Union[str, bytes, os.PathLike]


class CheckpointError(RuntimeError):
    """The file cannot be read as a checkpoint; ``reason`` says why."""


class UnreadableCheckpoint(CheckpointError):
    pass


class UnsafeCheckpoint(CheckpointError):
    def __init__(self, message: str, blocked: Optional[str]) -> None:
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


def as_path(path: PathLike) -> Path:
    """A Path for ``path``; bytes (a name that need not be UTF-8) through os.fsdecode."""
    return Path(os.fsdecode(path))


def is_checkpoint_path(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(".safetensors") or name.endswith(TORCH_SUFFIXES)


def read_checkpoint(path: PathLike) -> LoadedCheckpoint:
    path = as_path(path)
    with _open(path) as handle:
        if path.name.lower().endswith(".safetensors"):
            raw, metadata = _read_safetensors(path, handle)
        else:
            raw = _read_torch(path, handle)
            metadata = _scalars(raw)
    state, container, has_ema = _find_state_dict(raw, path)
    tensors, stripped = strip_prefixes(state, path)
    return LoadedCheckpoint(str(path), tensors, container, stripped, has_ema, metadata)


def _open(path: Path) -> BinaryIO:
    """The file opened for reading (non-blocking, so a FIFO cannot hang the reader); it must be
    a non-empty regular file."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise UnreadableCheckpoint(f"{path}: no such file") from None
    except OSError as exc:
        raise UnreadableCheckpoint(f"{path}: cannot be opened ({exc.strerror})") from None
    handle = os.fdopen(fd, "rb")
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        handle.close()
        raise UnreadableCheckpoint(f"{path}: not a regular file")
    if info.st_size == 0:
        handle.close()
        raise UnreadableCheckpoint(f"{path}: empty file (0 bytes)")
    return handle


def _by_descriptor(handle: BinaryIO, path: Path) -> str:
    """A name that opens this very descriptor (Linux /proc, BSD and macOS /dev/fd); elsewhere
    (Windows, where names are Unicode) the path itself."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        if os.path.isdir(folder):
            return f"{folder}/{handle.fileno()}"
    return str(path)


def _scalars(raw: object) -> dict:
    """Plain fields of a torch container (epoch, arch, pretrained, ...): its metadata."""
    if not isinstance(raw, dict):
        return {}
    return {str(k): v for k, v in raw.items() if isinstance(v, (str, int, float, bool))}


def _read_safetensors(path: Path, handle: BinaryIO) -> tuple[dict, dict]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(_by_descriptor(handle, path), framework="pt") as opened:
            keys = list(opened.keys())
            if len(keys) > MAX_TENSORS:
                raise UnreadableCheckpoint(f"{path}: {len(keys)} tensors, more than the "
                                           f"{MAX_TENSORS} this reader accepts")
            metadata = dict(opened.metadata() or {})
            return {k: opened.get_tensor(k) for k in keys}, metadata
    except (SafetensorError, OSError, ValueError, TypeError, RuntimeError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise UnreadableCheckpoint(f"{path}: not a readable safetensors file "
                                   f"({_first_line(str(exc))})") from None


def _read_torch(path: Path, handle: BinaryIO) -> object:
    is_zip = zipfile.is_zipfile(handle)
    if is_zip:
        _check_zip(path, handle)
    elif not pickles_fit(handle, MAX_PICKLE_BYTES, LEGACY_PICKLES):
        raise UnreadableCheckpoint(f"{path}: its pickles run past {MAX_PICKLE_BYTES >> 20} MiB, "
                                   f"more than this reader accepts")
    handle.seek(0)
    source = _by_descriptor(handle, path)
    try:
        with warnings.catch_warnings():     # "pickle protocol 4": the verdict says it
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(source, map_location="cpu", weights_only=True, mmap=is_zip)
    except pickle.UnpicklingError as exc:
        raise _refusal(path, handle, is_zip, str(exc)) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, AttributeError,
            IndexError, KeyError, TypeError, OverflowError, AssertionError, struct.error) as exc:
        if "legacy .tar format" in str(exc):
            raise UnreadableCheckpoint(LEGACY_TAR.format(path=path)) from None
        raise UnreadableCheckpoint(f"{path}: cannot be read as a torch checkpoint "
                                   f"({type(exc).__name__}: {_first_line(str(exc))})") from None


LEGACY_TAR = ("{path}: a checkpoint in torch's legacy .tar format (torch before 0.4), which torch "
              "reads only by running its pickle (weights_only=False), never done here on a user's "
              "file; load it once where you trust its origin and save its state_dict again with "
              "today's torch.save, or as .safetensors, then pass that file")


def _check_zip(path: Path, handle: BinaryIO) -> None:
    """Sizes from the zip's directory, before torch reads any member."""
    members = _zip_member_count(handle)
    if members > MAX_ZIP_MEMBERS:
        raise UnreadableCheckpoint(f"{path}: a zip of {members} members, more than the "
                                   f"{MAX_ZIP_MEMBERS} this reader accepts")
    handle.seek(0)
    try:
        with zipfile.ZipFile(handle) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise UnreadableCheckpoint(f"{path}: a broken zip file ({_first_line(str(exc))})") from None
    for info in infos:
        parts = info.filename.split("/")
        if len(parts) == 2 and parts[1] == "data.pkl" and info.file_size > MAX_PICKLE_BYTES:
            raise UnreadableCheckpoint(
                f"{path}: its pickle {info.filename} is {info.file_size >> 20} MiB, more than "
                f"the {MAX_PICKLE_BYTES >> 20} MiB this reader accepts")
    packed = [i for i in infos if i.compress_type != zipfile.ZIP_STORED]
    expanded = sum(i.file_size for i in packed)
    if expanded > MAX_EXPANDED_BYTES:
        raise UnreadableCheckpoint(
            f"{path}: {len(packed)} compressed member(s) would expand to {expanded >> 20} MiB "
            f"(torch.save stores members uncompressed; at most {MAX_EXPANDED_BYTES >> 20} MiB "
            f"accepted)")


def _zip_member_count(handle: BinaryIO) -> int:
    """The member count the zip's end record declares (zip64 included), read from the tail
    before the central directory is parsed into memory."""
    size = handle.seek(0, os.SEEK_END)
    tail_start = max(0, size - (1 << 16) - 22)
    handle.seek(tail_start)
    tail = handle.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return 0
    count = struct.unpack("<H", tail[at + 10: at + 12])[0]
    locator = tail.rfind(b"PK\x06\x07", 0, at)
    if count == 0xFFFF and locator >= 0 and locator + 20 <= len(tail):
        record = struct.unpack("<Q", tail[locator + 8: locator + 16])[0]
        handle.seek(record)
        head = handle.read(56)
        if len(head) == 56 and head[:4] == b"PK\x06\x06":
            count = struct.unpack("<Q", head[32:40])[0]
    return count


def _refusal(path: Path, handle: BinaryIO, is_zip: bool, message: str) -> CheckpointError:
    """What torch's weights-only loader refused: the global it names; else the unsafe globals
    a scan of the pickle finds (torch decides which are unsafe); else an unreadable file."""
    blocked = refused_global(message)
    if blocked:
        return UnsafeCheckpoint(f"{path}: torch refused the global {blocked}: the pickle would "
                                f"import or call it; refused without running it", blocked)
    scan = scan_globals(handle, is_zip)
    unsafe = unsafe_globals(scan.globals)
    if unsafe:
        more = f" (also {', '.join(unsafe[1:4])})" if len(unsafe) > 1 else ""
        return UnsafeCheckpoint(f"{path}: the pickle would import or call {unsafe[0]}{more}; "
                                f"refused without running it", unsafe[0])
    if scan.computed:
        return UnsafeCheckpoint(f"{path}: the pickle imports {scan.computed} global(s) whose "
                                f"names it builds while loading (STACK_GLOBAL of computed "
                                f"strings); refused without running it", None)
    stopped = f"; {scan.stopped}" if scan.stopped else ""
    return UnreadableCheckpoint(f"{path}: torch's weights-only loader cannot read it "
                                f"({_torch_reason(message)}); no unsafe global found{stopped}")


def _torch_reason(message: str) -> str:
    """The line of torch's message that names the problem, with an opcode number named."""
    detail = message.split("WeightsUnpickler error:", 1)[-1]
    boiler = ("Weights only load failed", "Check the documentation", "Please file an issue",
              "(1)", "(2)", "In PyTorch 2.6")
    lines = [line.strip() for line in detail.splitlines() if line.strip()]
    reason = next((line for line in lines if not line.startswith(boiler)),
                  lines[0] if lines else "")
    if reason.startswith("Unsupported operand "):
        code = reason.rsplit(" ", 1)[-1]
        opcode = pickletools.code2op.get(chr(int(code))) if code.isdigit() and int(code) < 256 \
            else None
        if opcode is not None:
            reason += (f" ({opcode.name}, pickle protocol {opcode.proto}: torch.save writes "
                       f"protocol 2 by default)")
    return reason[:300]


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:200]


MAX_CONTAINER_DEPTH = 4   # ckpt["model"]["state_dict"]: containers nest a few levels at most


def _find_state_dict(raw: object, path: Path) -> tuple[dict, str, bool]:
    """The state dict: the top level when it holds tensors, else the first container key (in
    CONTAINER_KEYS order, then any ``*state_dict*`` / ``*model*`` key) that does, searched up to
    MAX_CONTAINER_DEPTH levels (``ckpt["model"]["state_dict"]``, ``ckpt["model_state"]``)."""
    if not isinstance(raw, dict):
        raise UnreadableCheckpoint(f"{path}: holds a {type(raw).__name__}, not a state dict")
    has_ema = any(isinstance(raw.get(k), dict) for k in EMA_KEYS)
    found = _nested_state_dict(raw, (), 0)
    if found is not None:
        state, where = found
        return state, "top level" if not where else "/".join(where), has_ema
    raise UnreadableCheckpoint(f"{path}: no tensors found at the top level or under "
                               f"{', '.join(CONTAINER_KEYS)} or keys naming a state dict or "
                               f"model, {MAX_CONTAINER_DEPTH} levels deep "
                               f"(keys: {', '.join(map(str, list(raw)[:8]))})")


def _nested_state_dict(d: dict, where: tuple, depth: int) -> Optional[tuple]:
    if _is_state_dict(d):
        return d, where
    if depth >= MAX_CONTAINER_DEPTH:
        return None
    keys = [k for k in CONTAINER_KEYS if k in d] + [
        k for k in d if isinstance(k, str) and k not in CONTAINER_KEYS
        and ("state_dict" in k.lower() or "model" in k.lower()) and k not in EMA_KEYS]
    for key in keys:
        value = d.get(key)
        if isinstance(value, dict):
            found = _nested_state_dict(value, where + (str(key),), depth + 1)
            if found is not None:
                return found
    return None


def _is_state_dict(d: dict) -> bool:
    return bool(d) and any(isinstance(v, torch.Tensor) for v in d.values())


def strip_prefixes(state: dict, path: Optional[Path] = None) -> tuple[dict, list]:
    """Strip wrapper prefixes shared by every tensor key (DataParallel, torch.compile, Lightning)."""
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    odd = next((k for k in tensors if not isinstance(k, str)), None)
    if odd is not None:
        raise UnreadableCheckpoint(f"{path}: a tensor's key is a {type(odd).__name__} "
                                   f"({str(odd)[:60]!r}), not a string: not a state dict")
    if len(tensors) > MAX_TENSORS:
        raise UnreadableCheckpoint(f"{path}: {len(tensors)} tensors, more than the "
                                   f"{MAX_TENSORS} this reader accepts")
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


def read_container(path: PathLike) -> object:
    """Everything a torch checkpoint file holds (its whole container: state dict, init weights,
    results), read as :func:`read_checkpoint` reads it: sizes bounded, weights only, nothing
    executed (a refused global raises :class:`UnsafeCheckpoint`)."""
    path = as_path(path)
    with _open(path) as handle:
        return _read_torch(path, handle)
