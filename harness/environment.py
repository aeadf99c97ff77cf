"""Provenance: the versions, device and git commits every record carries.

Two commits, kept apart: ``git_commit`` is the *project's* (the git checkout holding the pytest
rootdir, or the folder a command runs in): what the runs judged were made from; ``harness_commit``
is the harness's own checkout, or says that the harness is an installed package (its version is
``harness``).
"""
from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path
from typing import Optional

import torch

from harness import __version__

HARNESS_ROOT = Path(__file__).resolve().parent.parent
GIT_TIMEOUT_S = 10


def _git(folder: Path, *args: str) -> Optional[str]:
    """``git -C folder ARGS``'s output, None when git fails or is missing."""
    try:
        out = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True,
                             timeout=GIT_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.lru_cache(maxsize=8)
def commit_of(folder: Path) -> str:
    """The commit checked out where ``folder`` lies (``+dirty`` when tracked files changed);
    ``unknown (...)`` saying why when there is none."""
    folder = Path(folder)
    if not folder.is_dir():
        return f"unknown (no folder {folder})"
    head = _git(folder, "rev-parse", "HEAD")
    if head is None:
        return "unknown (not a git checkout)"
    dirty = _git(folder, "status", "--porcelain", "--untracked-files=no")
    return head + ("+dirty" if dirty else "")


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """The harness's own commit: its checkout's, when the package is one (an editable install
    of a clone); an installed package lying inside some other repository is not that one's."""
    top = _git(HARNESS_ROOT, "rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != HARNESS_ROOT:
        return f"none (installed package, version {__version__})"
    return commit_of(HARNESS_ROOT)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def environment(device: torch.device | None = None, project: Path | None = None) -> dict:
    """Versions and commits; ``project``: the project's root (default: the current folder)."""
    import timm
    import torchvision

    project = Path(project if project is not None else Path.cwd()).resolve()
    env = {
        "harness": __version__,
        "git_commit": commit_of(project),
        "project": str(project),
        "harness_commit": git_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "timm": timm.__version__,
        "platform": platform.platform(),
        "cuda_available": torch.cuda.is_available(),
    }
    if device is not None:
        env["device"] = str(device)
        env["device_name"] = device_name(device)
    return env
