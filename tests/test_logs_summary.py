"""`harness log PATH` prints what a parser read; `harness report` renders a log's report again."""
import json

from fixtures.logs import SAMPLE_LOG, SEED_RUN, research_log, write_research_log
from harness.cli import main


def test_harness_log_prints_states_and_what_was_set_aside(tmp_path, capsys):
    path = write_research_log(SEED_RUN, tmp_path / "run.log")
    assert main(["log", str(path)]) == 0
    out = capsys.readouterr().out
    assert "vit_small on cifar10 (10 classes), claims a pretrained init" in out
    assert "run complete: no" in out and "unfinished last line set aside: 'Epoch: [2][0/352]" in out
    assert ("state 0: 60 evaluated epochs, after epoch 0 20.66%, best 74.12%, final 73.92%, sparsity 0.00%, "
            "first-batch loss 2.3346 = ln 10 + 1%") in out


def test_harness_log_json_and_format_override(capsys):
    assert main(["log", str(SAMPLE_LOG), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [s["index"] for s in data["states"]] == [0, 1, 2]
    assert main(["log", str(SAMPLE_LOG), "--log-format", "mllog"]) == 0
    assert "113 not understood" in capsys.readouterr().out


def test_harness_log_mistakes_are_one_line_exit_2(tmp_path, capsys):
    assert main(["log", str(tmp_path / "missing.log")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.log: no such file or folder" in err


def test_harness_log_escapes_what_the_log_and_its_name_hold(tmp_path, capsys):
    """A log cannot clear the screen or print a fake PASS line over the real output (issue 10,
    item 13): escape sequences, carriage returns and bidi overrides in its lines and its file
    name are printed as visible text."""
    name = tmp_path / "run\x1b[2J\rPASS\u202e.log"
    text = research_log(SEED_RUN).replace("conv1 included for prune and rewind: False",
                                          "\x1b[2J\x1b[HPASS  all verdicts\x07 \x1b]8;;http://x\x07")
    name.write_bytes(text.encode() + b"\n\x1b[32mPASS\x1b[0m tail")   # a \r would end the line
    assert main(["log", str(name)]) == 0
    out = capsys.readouterr().out
    assert not any(c in out for c in "\x1b\r\x07\u202e")
    assert "run\\x1b[2J\\x0dPASS\\u202e.log: vit_small" in out      # the file name, visible
    assert "not understood: line 3: \\x1b[2J\\x1b[HPASS  all verdicts\\x07" in out
    assert "unfinished last line set aside: '\\x1b[32mPASS\\x1b[0m tail'" in out
    assert main(["log", str(tmp_path / "gone\x1b[2J.log")]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "gone\\x1b[2J.log: no such file or folder" in err


def test_harness_log_json_is_strict_json(tmp_path, capsys):
    """NaN losses (a diverged run, timm's missing training accuracy) print as null, not NaN
    (issue 10, item 17): jq and JSON.parse read the output."""
    path = tmp_path / "nan.log"
    path.write_text("Namespace(dataset='cifar10', lr=0.01)\npruning state 0\n"
                    "Epoch: [0][0/5]\tLoss nan (nan)\tAccuracy 10.0 (10.0)\n"
                    "train_accuracy 10\nvalid_accuracy 10\nvalid_accuracy 10\n")
    assert main(["log", str(path), "--json"]) == 0
    out = capsys.readouterr().out

    def refuse(name):
        raise AssertionError(f"{name} in the output")
    data = json.loads(out, parse_constant=refuse)
    state = data["states"][0]
    assert state["first_batch_loss"] is None and state["epochs"][0]["train_loss"] is None
    assert state["epochs"][0]["test_accuracy"] == 10.0


def test_harness_log_lists_what_it_refused_and_cut(tmp_path, capsys):
    path = tmp_path / "odd.log"
    path.write_text("Namespace(dataset='cifar10', lr=0.01, ids=[" + "7, " * 3000 + "8])\n"
                    "pruning state 0\ntrain_accuracy 10\nvalid_accuracy 10\nvalid_accuracy 150\n")
    assert main(["log", str(path)]) == 0
    out = capsys.readouterr().out
    assert "  refused: line 5: 'valid_accuracy 150': test accuracy 150% is outside 0-100%" in out
    assert "  argument cut: ids: a value of 9,003 characters, over the 4,096 read as a literal" in out
    assert "state 0 epoch 0: not entered (line 5: test accuracy 150% is outside 0-100%)" in out
