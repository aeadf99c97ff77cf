"""The follower reads what a run appends to its log: complete lines only, a rotated or truncated
file from its start, a long line cut, and nothing read twice."""
import os

import pytest

from harness.logs import LogError
from harness.watch.follower import MAX_LINE_BYTES, Follower


def _append(path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def test_only_complete_lines_and_each_once(tmp_path):
    log = tmp_path / "run.log"
    log.write_bytes(b"Namespace(a=1)\npruning sta")
    follower = Follower(log)
    assert follower.poll() == ["Namespace(a=1)"]
    assert follower.poll() == [] and follower.unfinished() == "pruning sta"
    _append(log, b"te 0\r\nvalid_accuracy 1.0\rvalid_accuracy 2.0\n")
    assert follower.poll() == ["pruning state 0", "valid_accuracy 1.0", "valid_accuracy 2.0"]
    assert follower.poll() == []
    follower.close()


def test_a_truncated_log_is_read_again_from_its_start(tmp_path):
    log, notes = tmp_path / "run.log", []
    log.write_bytes(b"one\ntwo\nthree\n")
    follower = Follower(log, note=notes.append)
    assert follower.poll() == ["one", "two", "three"]
    with open(log, "r+b") as fh:          # the same file, cut and written again
        fh.truncate(0)
        fh.write(b"new\n")
    assert follower.poll() == ["new"]
    assert "truncated to 4 bytes (it had 14)" in notes[0]
    follower.close()


def test_a_rotated_log_is_read_to_its_end_then_the_new_file(tmp_path):
    log, notes = tmp_path / "run.log", []
    log.write_bytes(b"a\n")
    follower = Follower(log, note=notes.append)
    assert follower.poll() == ["a"]
    _append(log, b"b\n")
    os.rename(log, tmp_path / "run.log.1")   # as logrotate does, then the run opens a new one
    log.write_bytes(b"c\n")
    assert follower.poll() == ["b"]           # the rest of the old file first
    assert follower.poll() == ["c"]
    assert "replaced (rotated)" in notes[0]
    follower.close()


def test_a_line_longer_than_the_bound_is_cut_and_its_rest_skipped(tmp_path):
    log = tmp_path / "run.log"
    log.write_bytes(b"x" * (3 * MAX_LINE_BYTES) + b"\nnext\n")
    follower = Follower(log)
    lines = []
    for _ in range(10):               # 4 chunks of 64 KiB hold the file
        lines += follower.poll()
    assert lines == ["x" * MAX_LINE_BYTES + " [line cut]", "next"]
    follower.close()


def test_idle_ends_the_iteration_without_waiting_on_the_wall_clock(tmp_path):
    log = tmp_path / "run.log"
    log.write_bytes(b"only\n")
    now = [0.0]
    follower = Follower(log, idle_s=5, clock=lambda: now[0],
                        sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert list(follower) == ["only"] and follower.ended_idle


def test_a_missing_log_or_a_fifo_is_one_line(tmp_path):
    with pytest.raises(LogError, match="no such file; pass the log the run writes"):
        Follower(tmp_path / "nope.log")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(LogError, match="not a regular file"):
        Follower(fifo)
    waiting = Follower(tmp_path / "later.log", wait_for_file=True)
    assert waiting.poll() == []
    (tmp_path / "later.log").write_bytes(b"here\n")
    assert waiting.poll() == ["here"]
    waiting.close()
