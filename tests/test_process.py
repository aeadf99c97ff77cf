"""harness.process on real child processes: the command's whole process group is ended at its
timeout, at the end of its run and when the caller raises, and a background process holding the
output pipe open cannot keep the reader waiting."""
import sys
import threading

import pytest

from harness.process import OwnedProcess, group_members

DEADLINE_S = 120     # generous: the bug these tests name waits 3600 s


def _read_all(proc: OwnedProcess, timeout=None) -> list:
    """The pieces of ``proc``'s output, read in a thread; fails (not hangs) when the reading
    does not end within DEADLINE_S."""
    pieces: list = []
    reader = threading.Thread(target=lambda: pieces.extend(proc.lines(timeout)), daemon=True)
    reader.start()
    reader.join(DEADLINE_S)
    assert not reader.is_alive(), f"still reading after {DEADLINE_S} s: {pieces[-3:]}"
    return pieces


def test_a_background_process_holding_the_output_does_not_keep_the_reader_waiting():
    """`sh -c 'sleep 3600 & echo hi'`: the shell exits at once, its sleep holds the pipe open;
    reading to the end of output waited for the sleep, and the sleep outlived the run."""
    with OwnedProcess(["sh", "-c", "sleep 3600 & echo hi"]) as proc:
        assert _read_all(proc) == [b"hi\n"]
        assert group_members(proc.pgid), "the background sleep runs until the run ends"
    assert group_members(proc.pgid) == [] and proc.returncode == 0 and not proc.timed_out


def test_the_timeout_ends_the_whole_group_even_a_process_that_ignores_sigterm():
    child = ("import signal, subprocess, sys, time\n"
             "subprocess.Popen([sys.executable, '-c', 'import signal, time; "
             "signal.signal(signal.SIGTERM, signal.SIG_IGN); print(\"grandchild\", flush=True); "
             "time.sleep(3600)'])\n"
             "time.sleep(3600)\n")
    with OwnedProcess([sys.executable, "-c", child]) as proc:
        pieces = _read_all(proc, timeout=3)
    assert proc.timed_out and proc.returncode == -15
    assert group_members(proc.pgid) == []
    assert pieces in ([b"grandchild\n"], [])      # killed before or after it printed


def test_an_exception_in_the_caller_ends_the_group():
    with pytest.raises(KeyboardInterrupt):
        with OwnedProcess(["sh", "-c", "sleep 3600 & sleep 3600"]) as proc:
            raise KeyboardInterrupt
    assert group_members(proc.pgid) == [] and proc.returncode == -15


def test_a_command_that_closes_its_output_and_goes_on_is_waited_for_not_killed(tmp_path):
    with OwnedProcess(["sh", "-c", "echo before; exec >/dev/null 2>&1; sleep 1; "
                                   "echo done > marker; exit 3"], cwd=tmp_path) as proc:
        assert _read_all(proc) == [b"before\n"]
    assert proc.returncode == 3 and (tmp_path / "marker").read_text() == "done\n"


def test_a_long_line_comes_in_pieces_of_at_most_max_line_bytes():
    script = "import sys; sys.stdout.write('a' * 250 + '\\nb\\n' + 'c' * 100)"
    with OwnedProcess([sys.executable, "-c", script], max_line=100) as proc:
        pieces = _read_all(proc)
    assert pieces == [b"a" * 100, b"a" * 100, b"a" * 50 + b"\n", b"b\n", b"c" * 100]


def test_a_command_that_cannot_start_raises_oserror_and_leaves_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        OwnedProcess([str(tmp_path / "no-such-program")])
