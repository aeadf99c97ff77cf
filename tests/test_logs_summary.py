"""`harness log PATH` prints what a parser read; `harness report` renders a log's report again."""
import json

from fixtures.logs import SAMPLE_LOG, SEED_RUN, write_research_log
from harness.cli import main


def test_harness_log_prints_states_and_what_was_set_aside(tmp_path, capsys):
    path = write_research_log(SEED_RUN, tmp_path / "run.log")
    assert main(["log", str(path)]) == 0
    out = capsys.readouterr().out
    assert "vit_small on cifar10 (10 classes), claims a pretrained init" in out
    assert "run complete: no" in out and "unfinished last line set aside: 'Epoch: [2][0/352]" in out
    assert ("state 0: 60 epochs, after epoch 0 20.66%, best 74.12%, final 73.92%, sparsity 0.00%, "
            "first-batch loss 2.3346 = ln 10 + 1%") in out


def test_harness_log_json_and_format_override(capsys):
    assert main(["log", str(SAMPLE_LOG), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [s["index"] for s in data["states"]] == [0, 1, 2]
    assert main(["log", str(SAMPLE_LOG), "--log-format", "mllog"]) == 0
    assert "114 not understood" in capsys.readouterr().out


def test_harness_log_mistakes_are_one_line_exit_2(tmp_path, capsys):
    assert main(["log", str(tmp_path / "missing.log")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.log: no such file or folder" in err
