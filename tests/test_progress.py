"""Training progress: a live bar (images/s, ETA) on a terminal, one line per epoch in a log, and
under pytest both shown past its output capture (``--harness-no-progress`` turns them off)."""
import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.progress import EpochLines, ProgressOut, progress_bar

ROOT = Path(__file__).resolve().parent.parent


def _out(live: bool) -> tuple[ProgressOut, list]:
    written: list = []
    return ProgressOut(written.append, lambda: live), written


def test_a_live_bar_shows_rate_and_eta():
    out, written = _out(live=True)
    with progress_bar(total=1000, desc="digits state 0", out=out, epochs=4) as update:
        for _ in range(3):
            time.sleep(0.6)            # past the bar's 0.5 s refresh interval
            update(250)
    text = "".join(written)
    assert "digits state 0" in text and "\r" in text
    assert re.search(r"750/1.00k \[\d\d:\d\d<\d\d:\d\d, [\d.]+k?img/s\]", text)  # elapsed<ETA, rate


def test_a_log_gets_a_line_when_training_begins_and_one_per_epoch():
    written: list = []
    now = [0.0]
    lines = EpochLines(total=3000, desc="digits state 0", epochs=3, write=written.append,
                       clock=lambda: now[0])
    for _ in range(30):              # 100 images a step, one simulated second each
        now[0] += 1.0
        lines.update(100)
    assert written == [
        "digits state 0: training, 3 epochs of 1,000 images\n",
        "digits state 0: epoch 1/3 done, 100 img/s, 00:10 elapsed, 00:20 left\n",
        "digits state 0: epoch 2/3 done, 100 img/s, 00:20 elapsed, 00:10 left\n",
        "digits state 0: epoch 3/3 done, 100 img/s, 00:30 elapsed, 00:00 left\n"]


def test_not_a_terminal_means_lines_and_a_label_is_escaped():
    out, written = _out(live=False)
    with progress_bar(total=20, desc="evil\x1b[2J", out=out, epochs=2) as update:
        update(10)
        update(10)
    assert len(written) == 3 and all("\x1b" not in w and "evil\\x1b[2J" in w for w in written)


def test_disabled_progress_is_silent(capsys):
    out, written = _out(live=False)
    with progress_bar(total=10, desc="x", enabled=False, out=out) as update:
        assert update is None
    assert written == [] and capsys.readouterr().err == ""


TINY_SUITE = '''
from harness.suite import Bar, Case, Recipe, RunSpec

SUITE = "tiny"
HARNESS_CASES = [Case("digits", RunSpec(model="vit_tiny_digits", dataset="digits", recipe=Recipe(
    epochs=2, batch_size=64, lr=1e-3, augment="none", eval_batch_size=512)))]
HARNESS_BARS = [Bar("tiny/digits/state0/accuracy", "accuracy", ">=", 0.0, "%")]

def test_accuracy(harness, case):
    harness.check_epoch("tiny/digits/state0/accuracy", harness.run(case).state(0).best_epoch)
'''


def _index(lines: list, text: str) -> int:
    return next(i for i, line in enumerate(lines) if text in line)


@pytest.mark.slow
def test_a_default_pytest_run_shows_progress_past_the_capture(pytester):
    """Not a terminal (a CI log): a line as training begins and one per epoch, before the
    test's result; none with --harness-no-progress."""
    pytester.makepyfile(test_tiny=TINY_SUITE)
    result = pytester.runpytest_subprocess("-v", "-p", "no:randomly", "--harness-reports-dir", "r",
                                           "--harness-threads", "1")
    result.assert_outcomes(passed=1)
    lines = result.outlines
    begun = _index(lines, "harness: digits state 0: training, 2 epochs of ")
    first = _index(lines, "harness: digits state 0: epoch 1/2 done, ")
    assert begun < first < _index(lines, "harness: digits state 0: epoch 2/2 done, ") < _index(lines, "PASSED")
    assert "\r" not in result.stdout.str()          # no bar redrawn in a log
    quiet = pytester.runpytest_subprocess("-v", "-p", "no:randomly", "--harness-reports-dir", "r2",
                                          "--harness-threads", "1", "--harness-no-progress")
    quiet.assert_outcomes(passed=1)
    assert "digits state 0" not in quiet.stdout.str() + quiet.stderr.str()


@pytest.mark.slow
def test_on_a_terminal_the_bar_is_live(tmp_path):
    (tmp_path / "test_tiny.py").write_text(TINY_SUITE)
    leader, follower = pty.openpty()
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="100")
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider",
                             "--harness-reports-dir", str(tmp_path / "r"), "--harness-threads", "1",
                             "test_tiny.py"], cwd=tmp_path, env=env, stdout=follower,
                            stderr=follower, stdin=subprocess.DEVNULL)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:                # the pty is closed once the process is gone
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert proc.wait(timeout=600) == 0, b"".join(chunks).decode(errors="replace")
    text = b"".join(chunks).decode(errors="replace")
    assert re.search(r"\rdigits state 0: +\d+%\|.*img/s\]", text), text[-2000:]
    assert text.index("digits state 0") < text.index("1 passed")
