"""What runs inside a Ray worker: one run of the session (trained into the shared runs store, or
found there), and the check that the store is the same folder, writable, on every node.

A task's standard output and error are kept in ``<store>/<key>/task.log`` (appended to by every
attempt, each under a header naming its process and host), so the session can quote a failed
run's last lines even when the worker that ran it died.
"""
from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Union

from harness import storage

TAIL_LINES = 20
TAIL_BYTES = 64 << 10       # a task log is read back from its end, never whole
LOG_NAME = "task.log"


@dataclass(frozen=True)
class Job:
    """One run the session needs: its store key, its spec, what to call it, how many states it
    stores (0 for a command: unknown), the key of the run it starts from (its shared State 0)."""

    key: str
    spec: object               # RunSpec or CommandSpec
    label: str
    states: int = 0
    after: str = ""


def task_log(store_root: Union[str, Path], key: str) -> Path:
    return Path(store_root) / key / LOG_NAME


def run_task(job: Job, context, root: str, *after) -> dict:
    """Make ``job``'s run with ``context`` (``after``: the refs of the runs it builds on, which
    Ray resolves before this starts). Returns ``{"run_id", "reused"}``, or ``{"failed": {...}}``
    when the run fails for its own reasons (those are not retried); a killed worker is retried
    by Ray and resumes after the last stored state."""
    from harness.command import CommandFailed
    from harness.executors import run_errors

    log = task_log(context.store.root, job.key)
    failure, shown = None, None
    with _captured(log, job) as sink:
        try:
            record = _make(job, context, Path(root))
        except CommandFailed as exc:
            failure = {"kind": "command", "message": str(exc), "status": exc.status, "tail": exc.tail}
        except run_errors() as exc:
            print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
            failure = {"kind": "run", "message": str(exc), "status": 1, "tail": None}
        except Exception as exc:    # the run's own failure: reported as its verdict, not retried
            sink.flush()
            shown = (os.fstat(sink.fileno()).st_size, _short_traceback(exc))
            traceback.print_exc()   # the whole traceback stays in the task log
            failure = {"kind": "error", "message": f"the run raised {type(exc).__name__}: {exc}",
                       "status": 1, "tail": None}
    if failure is None:
        return {"run_id": record.run_id, "reused": bool(record.notes.get("reused"))}
    if failure["tail"] is None:
        end, frames = shown if shown else (None, [])
        failure["tail"] = tail(log, TAIL_LINES - len(frames), end) + frames
    return {"failed": failure}


def _short_traceback(exc: BaseException) -> list:
    """The innermost frames of ``exc``'s traceback and its message, as lines."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-2))
    return text.splitlines()[-(TAIL_LINES // 2):]


def _make(job: Job, context, root: Path):
    from harness.command import CommandSpec, get_or_run_command
    from harness.runs import get_or_run

    if str(root) not in sys.path:      # a model or dataset named by the project's import path
        sys.path.insert(0, str(root))
    if isinstance(job.spec, CommandSpec):
        return get_or_run_command(job.spec, context, root)
    return get_or_run(job.spec, context)


class _Tee:
    """A text stream writing to the task log and to the worker's own stream."""

    def __init__(self, sink, original) -> None:
        self.sink, self.original = sink, original

    def write(self, text: str) -> int:
        self.sink.write(text)
        self.original.write(text)
        return len(text)

    def flush(self) -> None:
        self.sink.flush()
        self.original.flush()

    def __getattr__(self, name: str):
        return getattr(self.original, name)


@contextlib.contextmanager
def _captured(log: Path, job: Job) -> Iterator:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8", errors="replace", buffering=1) as sink:
        sink.write(f"--- harness ray task: run {job.key} ({job.label}) in pid {os.getpid()} on "
                   f"{socket.gethostname()} at {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        with contextlib.redirect_stdout(_Tee(sink, sys.stdout)), \
                contextlib.redirect_stderr(_Tee(sink, sys.stderr)):
            yield sink


def tail(log: Path, lines: int = TAIL_LINES, end: Optional[int] = None) -> list:
    """The last ``lines`` lines of a task log before byte ``end`` (default: its end), read from
    at most TAIL_BYTES."""
    try:
        with open(log, "rb") as fh:
            end = fh.seek(0, os.SEEK_END) if end is None else end
            start = max(0, end - TAIL_BYTES)
            fh.seek(start)
            text = fh.read(end - start).decode("utf-8", errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:] if lines > 0 else []


def probe_store(root: str, marker: str, token: str) -> Optional[str]:
    """Why the runs store at ``root`` is not the driver's folder, writable, on this node (None
    when it is): the driver wrote ``token`` into ``root/marker`` just before."""
    path = Path(root)
    try:
        seen = (path / marker).read_text(encoding="utf-8")
    except OSError as exc:
        return (f"is not the same folder there (the check file the session wrote cannot be read: "
                f"{exc.strerror or exc})")
    if seen != token:
        return "is not the same folder there (it holds another session's check file)"
    probe = storage.temp_path(path / "ray-write-check")
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        os.unlink(probe)
    except OSError as exc:
        return f"cannot be written there ({exc.strerror or exc})"
    return None

