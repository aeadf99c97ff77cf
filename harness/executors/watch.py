"""Progress of the Ray tasks of a session, read from the shared runs store: one terminal line each
time a running task's state changes (it starts, stores a state, restarts after its worker died).

A running run holds its lock, whose holder note names the process and host
(:func:`harness.lock.holder_note`); its stored states are ``state<k>.json`` files. Nothing here
asks Ray, so the lines read the same for a local Ray and a cluster.
"""
from __future__ import annotations

import time
from typing import Callable, Iterable, Optional

from harness.escape import terminal
from harness.executors.task import Job
from harness.lock import holder_note
from harness.store import RunStore


def stored_states(store: RunStore, key: str) -> int:
    """How many consecutive ``state<k>.json`` files the run has (its completed states)."""
    count = 0
    while (store.path(key) / f"state{count}.json").is_file():
        count += 1
    return count


class Watch:
    """Says (through ``echo``) what changed in each running task since the last poll."""

    def __init__(self, store: RunStore, echo: Optional[Callable[[str], None]]) -> None:
        self.store = store
        self.echo = echo
        self.seen: dict[str, tuple] = {}     # key -> (pid, host, stored states)
        self.pids: dict[str, list] = {}       # key -> every pid seen running it

    def poll(self, jobs: Iterable[Job]) -> None:
        for job in jobs:
            note = holder_note(self.store.lock_path(job.key))
            if note is None:
                continue
            status = (note["pid"], note["host"], stored_states(self.store, job.key))
            if status == self.seen.get(job.key):
                continue
            self.seen[job.key] = status
            self.say(job, self._running(job, note, status[2]))

    def _running(self, job: Job, note: dict, stored: int) -> str:
        pids = self.pids.setdefault(job.key, [])
        again = ""
        if note["pid"] not in pids:
            if pids:
                again = f" (attempt {len(pids) + 1}: pid {pids[-1]} stopped)"
            pids.append(note["pid"])
        total = f"/{job.states}" if job.states else ""
        since = max(0.0, time.time() - note["since"])
        return (f"running in pid {note['pid']} on {note['host']}{again}: {stored}{total} states "
                f"stored, {since:.0f} s")

    def say(self, job: Job, text: str) -> None:
        if self.echo is not None:
            self.echo(terminal(f"ray: {job.label} [run {job.key}] {text}"))
