"""A cross-process exclusive lock on a file (fcntl.flock): the runs store holds one per run key
while it looks for a stored run and trains a missing one, so concurrent sessions or xdist
workers never train the same run twice; the second one waits and then reuses the stored run."""
from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[Path]:
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` block. The lock
    dies with its process, so a killed session never leaves a run locked."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield path
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
