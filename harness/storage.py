"""Atomic writes (write to a temporary file beside the target, then rename) for every store,
checkpoint and report the harness writes: a killed process leaves the old file or the new one,
never half of one.

Files are created like a plain ``open``: mode 0666 less the process's umask (a shared runner's
other users read what the umask lets them). A temporary file is named
``.<target>.<host>-<pid>-<random>.tmp``; a write that was killed leaves its temporary behind,
and the next write into that folder removes it (:func:`clean_stale`) once its process is gone
(same host) or it is older than a day (a writer on another host sharing the folder).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import stat
import time
from pathlib import Path
from typing import Any, Callable

import torch

STALE_AFTER_S = 24 * 3600  # a temporary of another host's process is removed after this long
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
_TEMP = re.compile(r"^\..+\.(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")


def temp_path(path: Path) -> Path:
    """A fresh temporary name beside ``path`` in the harness's own naming (see the module doc)."""
    path = Path(path)
    return path.parent / f".{path.name}.{_HOST}-{os.getpid()}-{secrets.token_hex(4)}.tmp"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _stale(entry: os.DirEntry, now: float) -> bool:
    match = _TEMP.match(entry.name)
    if match is None:
        return False
    try:
        age = now - entry.stat(follow_symlinks=False).st_mtime
    except FileNotFoundError:
        return False
    if match["host"] == _HOST and int(match["pid"]) != os.getpid() and not _alive(int(match["pid"])):
        return True
    return age > STALE_AFTER_S


def clean_stale(folder: Path) -> list[Path]:
    """Remove the temporaries that killed writes left in ``folder`` (files and folders of the
    harness's own naming whose writer is gone); return what was removed."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return removed
    now = time.time()
    for entry in entries:
        if not _stale(entry, now):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except FileNotFoundError:  # another process cleaned it first
            continue
        removed.append(Path(entry.path))
    return removed


def _create(path: Path) -> tuple[Path, int]:
    """Create a new empty temporary beside ``path`` with mode 0666 & ~umask, as open() would;
    return it and its mode."""
    tmp = temp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
    finally:
        os.close(fd)
    return tmp, mode


def _atomic(path: Path, write: Callable[[str], None]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path.parent)
    tmp, mode = _create(path)
    try:
        write(str(tmp))
        if stat.S_IMODE(os.stat(tmp).st_mode) != mode:  # a writer that made its own file (safetensors)
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    return path


def write_text(path: Path, text: str) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    return _atomic(path, write)


def write_json(path: Path, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2, sort_keys=False, default=_default) + "\n")


def write_bytes(path: Path, data: bytes) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)
    return _atomic(path, write)


def save_tensors(path: Path, tensors: dict, metadata: dict) -> Path:
    """A safetensors checkpoint with string metadata (how it was made)."""
    from safetensors.torch import save_file

    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    meta = {k: v if isinstance(v, str) else json.dumps(v, default=_default) for k, v in metadata.items()}
    return _atomic(path, lambda tmp: save_file(cpu, tmp, metadata=meta))


def save_torch(path: Path, obj: Any) -> Path:
    """A torch checkpoint (``torch.save``), written atomically."""
    return _atomic(path, lambda tmp: torch.save(obj, tmp))


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read 4 MiB at a time (bounded memory for any size)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")
