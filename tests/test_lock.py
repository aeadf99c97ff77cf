"""The cross-process run lock: a second process waits until the first releases it."""
import contextlib
import multiprocessing
import socket
import time

import pytest

from harness.lock import LockTimeout, exclusive


def _hold(path, started, seconds):
    with exclusive(path):
        started.set()
        time.sleep(seconds)


@contextlib.contextmanager
def _held(path, seconds):
    """Another process holding the lock at ``path`` for ``seconds``; yields that process."""
    ctx = multiprocessing.get_context("spawn")
    started = ctx.Event()
    holder = ctx.Process(target=_hold, args=(path, started, seconds))
    holder.start()
    try:
        assert started.wait(60)
        yield holder
    finally:
        if holder.is_alive() and seconds > 5:
            holder.kill()
        holder.join(60)


def test_a_second_process_waits_for_the_lock(tmp_path):
    with _held(tmp_path / "k.lock", 1.0) as holder:
        t0 = time.monotonic()
        with exclusive(tmp_path / "k.lock"):
            waited = time.monotonic() - t0
    assert waited > 0.5 and holder.exitcode == 0


def test_the_lock_is_released_when_the_holder_dies(tmp_path):
    with _held(tmp_path / "k.lock", 60.0) as holder:
        holder.kill()
        holder.join(60)
        waits = []      # the lock is free at once: no wait at all (not "under N seconds", which load breaks)
        with exclusive(tmp_path / "k.lock", timeout=600, on_wait=waits.append):
            pass
        assert waits == []


def test_a_waiting_process_is_told_who_holds_the_lock(tmp_path):
    said = []
    with _held(tmp_path / "k.lock", 1.0) as holder:
        with exclusive(tmp_path / "k.lock", "run abc", on_wait=said.append):
            pass
    assert said == [f"waiting for run abc: held by pid {holder.pid} on {socket.gethostname()} "
                    f"since {said[0].rsplit('since ', 1)[1]}"]


def test_a_lock_held_past_the_timeout_names_its_holder(tmp_path):
    with _held(tmp_path / "k.lock", 30.0) as holder:
        with pytest.raises(LockTimeout, match=f"held by pid {holder.pid}"):
            with exclusive(tmp_path / "k.lock", "history", timeout=0.5, on_wait=lambda m: None):
                pass
