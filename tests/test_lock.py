"""The cross-process run lock: a second process waits until the first releases it."""
import multiprocessing
import time

from harness.lock import exclusive


def _hold(path, started, seconds):
    with exclusive(path):
        started.set()
        time.sleep(seconds)


def test_a_second_process_waits_for_the_lock(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    started = ctx.Event()
    holder = ctx.Process(target=_hold, args=(tmp_path / "k.lock", started, 1.0))
    holder.start()
    try:
        assert started.wait(60)
        t0 = time.monotonic()
        with exclusive(tmp_path / "k.lock"):
            waited = time.monotonic() - t0
    finally:
        holder.join(60)
    assert waited > 0.5 and holder.exitcode == 0


def test_the_lock_is_released_when_the_holder_dies(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    started = ctx.Event()
    holder = ctx.Process(target=_hold, args=(tmp_path / "k.lock", started, 60.0))
    holder.start()
    assert started.wait(60)
    holder.kill()
    holder.join(60)
    t0 = time.monotonic()
    with exclusive(tmp_path / "k.lock"):
        assert time.monotonic() - t0 < 5
