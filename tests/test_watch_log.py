"""`harness watch LOG` follows a log another process is writing: each verdict is said while the
log holds only the epochs that decide it, and the watch ends when the log says the run ended.
Also in-process: a non-finite loss fails its state at once, a state over its declared epochs
fails, and a finished log earns the same verdicts the baseline suite gives it with --from-log."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.suite import BarBook
from harness.watch import Settings, Watch
from harness.watch.bars import bundled_bars

ROOT = Path(__file__).resolve().parents[1]

HEAD = ["Namespace(arch='vit_small', dataset='cifar10', epochs=2, init='none/in21k_init.pth.tar', "
        "lr=0.01, pruning_times=1, vit_pretrained=True)",
        "pruning state 0", "* remain weight =  100.0000 %"]


def _epoch(e: int, loss: str, test: float) -> list:
    return ["0.01", f"Epoch: [{e}][0/352]\tLoss {loss} ({loss})\tAccuracy 9.375 (9.375)",
            f"Epoch: [{e}][200/352]\tLoss {loss} ({loss})\tAccuracy 80.41 (60.2)",
            "train_accuracy 85.000", f"valid_accuracy {test + 0.3:.3f}", f"valid_accuracy {test:.3f}"]


TAIL = ["* best SA=96.50", "State 0 completed! Time elapsed: 2.00 minutes (120.0 seconds)"]

# the writer: appends one chunk of lines per line it reads on stdin, flushing each
WRITER = ("import sys\n"
          "path = sys.argv[1]\n"
          "for chunk in sys.stdin:\n"
          "    with open(path, 'a') as fh:\n"
          "        fh.write(chunk.replace('|', '\\n'))\n"
          "        fh.flush()\n")


@pytest.mark.slow
def test_watch_follows_a_log_another_process_appends_to(tmp_path):
    log = tmp_path / "run.log"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    watcher = subprocess.Popen([sys.executable, "-m", "harness.cli", "watch", str(log), "--wait",
                                "--idle", "1800"],   # a watcher that never decides ends (and fails)
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(log)], stdin=subprocess.PIPE,
                              text=True)
    seen = []
    try:
        writer.stdin.write("|".join(HEAD + _epoch(0, "2.3412", 94.21)) + "|\n")
        writer.stdin.flush()
        for line in watcher.stdout:       # the epoch-0 verdict, while the log holds epoch 0 only
            seen.append(line)
            if "state0/pretrained_start" in line:
                break
        assert "pass baseline/cifar10/state0/pretrained_start" in seen[-1], seen
        assert "observed 94.21%" in seen[-1]
        assert not any("state0/accuracy" in s for s in seen)     # state 0 is not over yet
        writer.stdin.write("|".join(_epoch(1, "0.0412", 96.5) + TAIL) + "|\n")
        writer.stdin.close()
        rest = watcher.stdout.read()
        status = watcher.wait()
    finally:
        writer.wait()
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    out = "".join(seen) + rest
    assert status == 0, out
    assert "note: init: none/in21k_init.pth.tar named in the log's arguments is not a file here" in out
    assert "pass baseline/cifar10/state0/accuracy: State 0 accuracy on cifar10: observed 96.50%" in rest
    assert "watch: the log says the run ended" in rest
    assert "watch: passed (5/5 verdicts passed, profile nightly)" in rest


def _watch(lines: list, **settings) -> Watch:
    book = BarBook("smoke")
    book.add(bundled_bars(), "the bundled suites")
    said = []
    watch = Watch("run.log", Settings(book=book, **settings), said.append)
    for line in lines:
        watch.feed(line)
    watch.said = said
    return watch


def test_a_nan_loss_fails_its_state_at_once_and_stops_the_run():
    lines = HEAD + ["0.01", "Epoch: [0][0/352]\tLoss 2.3412 (2.3412)\tAccuracy 9.375 (9.375)",
                    "Epoch: [0][200/352]\tLoss nan (nan)\tAccuracy 10.0 (9.8)"]
    watch = _watch(lines)
    failed = [v for v in watch.verdicts if not v.passed]
    assert [v.id for v in failed] == ["watch/cifar10/state0/loss_finite"]
    assert failed[0].evidence["non_finite"] == ["running loss nan at step 200/352 of epoch 0"]
    assert watch.should_stop()                       # no need to wait for the epoch's end
    assert not _watch(lines, keep_going=True).should_stop()


def test_an_exploding_finite_loss_fails_its_state_when_the_log_is_next_read():
    lines = HEAD + ["0.01", "Epoch: [0][0/352]\tLoss 2.3412 (2.3412)\tAccuracy 9.375 (9.375)",
                    "Epoch: [0][200/352]\tLoss 80.0 (41.5)\tAccuracy 10.0 (9.8)",
                    "train_accuracy 9.800", "valid_accuracy 10.000"]   # read at the evaluation
    watch = _watch(lines)
    failed = [v for v in watch.verdicts if not v.passed]
    assert [v.id for v in failed] == ["watch/cifar10/state0/loss_growth"]
    assert failed[0].observed == pytest.approx(41.5 / 2.3412)
    assert "the running loss at step 200/352 of epoch 0 is 41.5" in failed[0].evidence["note"]
    assert watch.should_stop()


def test_a_fine_tune_whose_loss_starts_near_zero_is_not_exploding_at_one():
    lines = HEAD + _epoch(0, "0.0812", 94.0) + _epoch(1, "1.5", 95.0) + TAIL
    watch = _watch(lines)
    watch.finish(run_over=True)
    growth = [v for v in watch.verdicts if v.id == "watch/cifar10/state0/loss_growth"]
    assert len(growth) == 1 and growth[0].passed and growth[0].observed == pytest.approx(1.5)


def test_a_state_past_its_declared_epochs_fails_while_it_runs():
    lines = HEAD + _epoch(0, "0.5", 94.0) + _epoch(1, "0.4", 95.0) + _epoch(2, "0.3", 95.5)
    watch = _watch(lines)
    epochs = [v for v in watch.verdicts if v.id == "watch/cifar10/state0/epochs"]
    assert len(epochs) == 1 and not epochs[0].passed and epochs[0].observed == 3
    assert "the run's arguments declare 2" in epochs[0].title


def test_a_finished_log_gets_the_verdicts_from_log_gives(tmp_path):
    """The seed's log, fed line by line: the same observed values and bars as
    tests/test_from_log.py asserts for the baseline suite on it."""
    from fixtures.logs import SEED_RUN, research_log

    watch = _watch(research_log(SEED_RUN).splitlines())
    watch.finish(run_over=False)
    got = {v.id: (v.observed, v.threshold, v.passed) for v in watch.verdicts}
    assert got["baseline/cifar10/state0/pretrained_start"] == (20.66, 50.0, False)
    assert got["baseline/cifar10/state0/accuracy"] == (74.12, 95.0, False)
    assert watch.ctx.book.profile == "nightly"
    # the epoch-0 verdict came before any later epoch was read
    first = next(i for i, line in enumerate(watch.said) if "pretrained_start" in line)
    assert all("state0/accuracy" not in line for line in watch.said[:first])


@pytest.mark.parametrize("argv, message", [
    (["watch"], "name the log to follow (harness watch LOG) or a command to run"),
    (["watch", "--"], "nothing after --: name the command to run"),
    (["watch", "run.log", "--", "python", "x.py"], "give a log to follow or a command after --"),
    (["watch", "run.log", "--idle", "0"], "--idle must be a number of seconds > 0, got 0.0"),
    (["watch", "nope.log"], "nope.log: no such file; pass the log the run writes"),
    (["watch", "--log-format", "declared", "--", "true"], "--log-format declared needs the format "
                                                          "declared: --pattern NAME=REGEX"),
    (["watch", "run.log", "--expect", "baseline/x>=abc"], "expected the form ID>=VALUE"),
    (["watch", "run.log", "--expect", "baseline/nope>=1"], "--expect 'baseline/nope': no bar with "
                                                           "this id in any profile"),
])
def test_usage_mistakes_are_one_line(tmp_path, monkeypatch, capsys, argv, message):
    from harness.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "run.log").write_text("")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness watch: error: ") and message in err and err.count("\n") == 1


@pytest.mark.parametrize("init, line", [
    ("timm:vit_small_patch16_224", "init: timm:vit_small_patch16_224 (timm's hub weights) is no file to judge"),
    ("timm:", "init: the log's arguments claim timm's hub weights ('timm:') but name no model; no init file "
              "is judged"),
])
def test_a_logs_timm_init_is_named_not_judged_as_a_file(init, line):
    from harness.record import RunRecord
    from harness.watch.checks import Context, init_file

    record = RunRecord("r", "log:research", "cifar10", 10, "vit", spec={"args": {"lr": 0.1}},
                       init=init, claims_pretrained=True)
    assert init_file(record, Context(book=None), run_over=True) == [line]


def test_what_the_log_says_reaches_the_terminal_escaped(tmp_path, capsys):
    """A verdict line quotes the log's own text (the init it names): an escape sequence there
    must not reach the terminal raw."""
    from harness.cli import main

    log = tmp_path / "run.log"
    head = [HEAD[0].replace("none/in21k_init.pth.tar", "x\x1b[2J\x1b]0;owned\x07.pth")] + HEAD[1:]
    log.write_text("\n".join(head + _epoch(0, "2.3412", 94.21) + _epoch(1, "0.0412", 96.5) + TAIL)
                   + "\n")
    assert main(["watch", str(log), "--idle", "1"]) == 0
    out = capsys.readouterr().out
    assert "x\\x1b[2J" in out                  # the note naming the init, made visible
    assert "\x1b" not in out and "\x07" not in out


@pytest.mark.slow
def test_the_commands_own_output_is_shown_escaped(tmp_path, capsys, monkeypatch):
    from harness.cli import main

    monkeypatch.chdir(tmp_path)
    main(["watch", "--reports-dir", "reports", "--", sys.executable, "-c",
          "print('\\x1b[2Jcleared \\x07bell')"])
    out = capsys.readouterr().out
    assert "\\x1b[2Jcleared \\x07bell" in out and "\x1b" not in out and "\x07" not in out
