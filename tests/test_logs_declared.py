"""Declared log formats: the accuracy scale said (never guessed silently), argument lines and JSON
argument lists read or said not read, the one list of names the help and README show, and the
project's pytest config found as pytest finds it by `harness log`."""
import json
import re
from pathlib import Path

import pytest

from harness.cli import main
from harness.inifile import find, log_patterns
from harness.logs import LogError, parse_log
from harness.logs.declared import LogPatterns
from harness.logsyntax import NAMES

ROOT = Path(__file__).resolve().parent.parent
LAB = ["epoch: ^\\[ep (\\d{1,6})\\]", "test_accuracy: val_top1=([0-9.]{1,20})", "arguments: ^args: "]


def _log(tmp_path: Path, *values: str, head: str = "") -> Path:
    path = tmp_path / "train.log"
    path.write_text(head + "".join(f"[ep {i:03d}] loss=0.5 val_top1={v} (n=600)\n"
                                   for i, v in enumerate(values)))
    return path


@pytest.mark.parametrize("scale, values, best, said", [
    ("auto", ("0.5012", "0.8712"), 87.12, "fraction: auto (all 2 accuracies printed are at most 1"),
    ("auto", ("50.12", "87.12"), 87.12, "percent: auto (an accuracy printed is above 1: 87.12)"),
    ("percent", ("0.5012", "0.8712"), 0.8712, "percent: declared (accuracy_scale = percent)"),
    ("fraction", ("0.5012", "0.8712"), 87.12, "fraction: declared (accuracy_scale = fraction)"),
])
def test_the_accuracy_scale_applied_is_said_in_the_record(tmp_path, scale, values, best, said):
    """A random-init run printing percentages near 1% would read as 100x its accuracy under
    the auto rule: accuracy_scale = percent says so, and the record says which rule applied."""
    patterns = LogPatterns.from_lines(LAB + [f"accuracy_scale: {scale}"])
    record = parse_log(_log(tmp_path, *values), patterns=patterns)
    assert record.state(0).best_accuracy == pytest.approx(best)
    assert record.notes["accuracy_scale"].startswith(said)
    assert main(["log", str(tmp_path / "train.log")] + [f"--pattern={p}" for p in LAB]
                + [f"--pattern=accuracy_scale: {scale}"]) == 0


def test_an_unknown_accuracy_scale_is_one_line_naming_the_choices():
    with pytest.raises(LogError, match=r"accuracy_scale must be one of auto, percent, fraction, got 'x100'"):
        LogPatterns.from_lines(LAB + ["accuracy_scale: x100"])


@pytest.mark.parametrize("line", ['args: {"lr": 0.1, "dataset": "cifar100", "model": "vgg19"}\n',
                                  "args: {'lr': 0.1, 'dataset': 'cifar100', 'model': 'vgg19'}\n"])
def test_a_json_or_dict_argument_list_is_read(tmp_path, line):
    record = parse_log(_log(tmp_path, "0.5", "0.6", head=line), patterns=LogPatterns.from_lines(LAB))
    assert (record.dataset, record.model, record.num_classes) == ("cifar100", "vgg19", 100)
    assert record.spec["recipe"]["lr"] == 0.1


def test_an_argument_list_that_cannot_be_read_is_said_not_read(tmp_path):
    record = parse_log(_log(tmp_path, "0.5", head="args: {lr: 0.1, broken\n"),
                       patterns=LogPatterns.from_lines(LAB))
    assert record.spec["args"] == {}
    assert any("line 1: an arguments line whose text after the match is neither key=value" in n
               for n in record.notes["arguments_cut"])


def test_a_json_arguments_line_is_read_by_the_generic_format(tmp_path):
    path = tmp_path / "run.log"
    path.write_text('config: {"dataset": "cifar10", "arch": "resnet20", "epochs": 2}\n'
                    "Epoch 0/2, Acc=0.8, lr=0.1\nEpoch 1/2, Acc=0.9, lr=0.1\n")
    record = parse_log(path)
    assert record.source == "log:epoch-acc" and (record.dataset, record.model) == ("cifar10", "resnet20")


def test_argument_lines_are_read_before_the_first_evaluation_only(tmp_path):
    patterns = LogPatterns.from_lines(LAB + [r"argument: ^(\w{1,40}): (.{1,100})$"])
    path = _log(tmp_path, "0.5", head="dataset: cifar100\nmodel: vgg19\nbatch_size: 64\n")
    with path.open("a") as fh:
        fh.write("dataset: imagenet\n")
    record = parse_log(path, patterns=patterns)
    assert record.spec["args"] == {"dataset": "cifar100", "model": "vgg19", "batch_size": 64}
    assert record.notes["lines_not_understood"] == 1


def test_the_docs_table_help_and_option_list_every_name():
    """One list: the table of docs/logs.md (generated from it at build time), `harness log --help`
    and the ini option's help."""
    import html

    from harness.cli import build_parser
    from harness.doctables import NAMES_MARKER, fill
    from harness.options import BY_NAME

    source = (ROOT / "docs" / "logs.md").read_text()
    assert source.count(NAMES_MARKER) == 1
    table = re.findall(r"^\| `(\w+)` \| (.+) \|$", fill(source), re.M)
    shown = {name: html.unescape(text).replace("\\|", "|").replace("\\*", "*") for name, text in table}
    assert shown == NAMES and [name for name, _ in table] == list(NAMES)
    sub = build_parser()._subparsers._group_actions[0].choices["log"]
    assert all(name in sub.format_help() for name in NAMES)
    assert all(name in BY_NAME["log_patterns"].help for name in NAMES)


# --- the project's config, as pytest finds it -----------------------------------------------
@pytest.mark.parametrize("name, text", [
    ("pyproject.toml", "[tool.pytest.ini_options]\nharness_log_patterns = ['epoch: ^ep (\\d+)', "
                       "'test_accuracy: top1=([0-9.]+)']\n"),
    ("pytest.ini", "[pytest]\nharness_log_patterns =\n    epoch: ^ep (\\d+)\n    test_accuracy: top1=([0-9.]+)\n"),
    ("tox.ini", "[pytest]\nharness_log_patterns =\n    epoch: ^ep (\\d+)\n    test_accuracy: top1=([0-9.]+)\n"),
    ("setup.cfg", "[tool:pytest]\nharness_log_patterns =\n    epoch: ^ep (\\d+)\n    test_accuracy: top1=([0-9.]+)\n"),
])
def test_harness_log_reads_the_patterns_of_the_projects_config(tmp_path, monkeypatch, capsys, name, text):
    (tmp_path / name).write_text(text)
    sub = tmp_path / "runs" / "today"
    sub.mkdir(parents=True)
    (sub / "train.log").write_text("ep 0\ntop1=0.41\nep 1\ntop1=0.73\n")
    monkeypatch.chdir(sub)
    assert main(["log", "train.log"]) == 0
    out = capsys.readouterr().out
    assert f"format: declared in harness_log_patterns in {tmp_path.resolve() / name}" in out
    assert "2 evaluated epochs, after epoch 0 41.00%, best 73.00%" in out


def test_the_config_pytest_would_use_wins(tmp_path):
    """pytest.ini counts even without a [pytest] section; a pyproject.toml without
    [tool.pytest.ini_options] does not, nor a setup.cfg without [tool:pytest]."""
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\nharness_log_patterns = []\n")
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (inner / "setup.cfg").write_text("[metadata]\nname = x\n")
    assert find(inner).path == tmp_path / "pyproject.toml" and log_patterns(inner) is None
    (inner / "pytest.ini").write_text("")
    assert find(inner).path == inner / "pytest.ini"


def test_a_broken_config_or_pattern_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\nharness_log_patterns = ['epoch: (a+)+']\n")
    (tmp_path / "x.log").write_text("Epoch 0/1, Acc=0.5\n")
    monkeypatch.chdir(tmp_path)
    assert main(["log", "x.log"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"harness_log_patterns in {tmp_path.resolve() / 'pyproject.toml'}" in err
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options\n")
    assert main(["log", "x.log"]) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_a_log_format_named_on_the_command_line_wins_over_the_projects_patterns(tmp_path, monkeypatch, capsys):
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\nharness_log_patterns = "
                                             "['test_accuracy: top1=([0-9.]+)']\n")
    (tmp_path / "x.log").write_text("Epoch 0/1, Acc=0.5\n")
    monkeypatch.chdir(tmp_path)
    assert main(["log", "x.log", "--log-format", "epoch-acc", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["source"] == "log:epoch-acc"


def test_the_from_run_log_is_read_with_the_declared_patterns(tmp_path):
    """A run folder whose log prints its arguments as JSON and its evaluations in the lab's own
    format: no run without the declaration, the run with it."""
    from harness.runfolder import RunFolderError, open_folder
    from tests.test_runfolder import write_folder

    folder = write_folder(tmp_path)
    args = dict(dataset="digits", arch="tiny", seed=1, save_dir="run", init="init_model/tiny.pth.tar",
                epochs=1, pruning_times=2, rate=0.5, prune_type="lt", struct="refill",
                vit_structured=True, vit_prune_target="both", mlp_prune_ratio=0.5, sorting_mode="global")
    (folder / "train.log").write_text("args: " + json.dumps(args) + "\nstate 0\n[ep 000] val_top1=0.25\n"
                                      "state 1\n[ep 000] val_top1=0.30\n")
    with pytest.raises(RunFolderError, match="no Namespace"):
        open_folder(folder)
    patterns = LogPatterns.from_lines(LAB + [r"state: ^state (\d+)$"])
    run = open_folder(folder, patterns=patterns)
    assert run.claims.method == "refill" and run.log.source == "log:declared"
    assert [s.best_accuracy for s in run.log.states] == [25.0, 30.0]


def test_from_log_format_declared_names_the_declared_format(tmp_path):
    from harness.options import OptionError, Options, resolve

    log = _log(tmp_path, "0.5012", "0.8712", head='args: {"dataset": "cifar10"}\n')
    resolved = resolve(Options(from_log=log, from_log_format="declared", log_patterns=tuple(LAB)),
                       cuda_available=False)
    assert resolved.log_record.source == "log:declared" and resolved.log_record.dataset == "cifar10"
    with pytest.raises(OptionError, match="'declared' is unknown; use one of research, imagenet-example, mllog"):
        resolve(Options(from_log=log, from_log_format="declared"), cuda_available=False)


@pytest.mark.parametrize("epoch", ["9" * 5000, "\u00b2", "\u0661"], ids=["5000-digits", "superscript", "arabic-indic"])
def test_an_epoch_that_is_no_bounded_ascii_number_is_refused_and_named(tmp_path, epoch, capsys):
    """A 5000-digit epoch (int() refuses over 4300 digits) or a superscript/Arabic-Indic digit
    (str.isdigit() says yes, int() says no) crashed the reader; now it is refused and named."""
    path = tmp_path / "train.log"
    path.write_text(f"[ep {epoch}] val_top1=0.5\n[ep 001] val_top1=0.7\n")
    lab = ["epoch: ^\\[ep (\\S{1,6000})\\]", "test_accuracy: val_top1=([0-9.]{1,20})"]
    record = parse_log(path, patterns=LogPatterns.from_lines(lab))
    said = " ".join(record.notes["epochs_without_test_accuracy"])
    assert f"line 1: epoch {epoch[:40]!r}"[:-1] in said and "ASCII digits: not read" in said
    assert record.state(0).best_accuracy == pytest.approx(70.0)
    assert main(["log", str(path)] + [f"--pattern={p}" for p in lab]) == 0
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("pattern, why", [
    ("(\\d|\\d\\d)*x", "repeats a part whose length varies"),
    ("(\\d\\d?)*x", "repeats a part whose length varies"),
    ("(a|a)*x", "repeats alternatives that can begin with the same character"),
    ("(?:ab|a.)+x", "repeats alternatives that can begin with the same character"),
])
def test_a_pattern_that_backtracks_exponentially_is_refused_when_declared(pattern, why, tmp_path, capsys):
    """(\\d|\\d\\d)*x ran for minutes on a 40-character line of digits; it is refused in one
    line naming the pattern and why."""
    with pytest.raises(LogError, match=re.escape(f"pattern epoch {pattern!r} {why}")):
        LogPatterns.from_lines([f"epoch: {pattern}", "test_accuracy: acc=(\\d{1,3})"])
    (tmp_path / "x.log").write_text("1" * 40 + "\n")
    assert main(["log", str(tmp_path / "x.log"), f"--pattern=epoch: {pattern}",
                 "--pattern=test_accuracy: acc=(\\d{1,3})"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and why in err


@pytest.mark.parametrize("pattern", ["(\\d)(?:ab|cd)+x", "(\\w|\\d)*x", "(\\d)(?:, \\d)*", "Epoch (\\d{1,9})"])
def test_repetitions_with_one_way_to_match_are_accepted(pattern):
    LogPatterns.from_lines([f"epoch: {pattern}", "test_accuracy: acc=(\\d{1,3})"])


# --- step: the first-batch loss ---------------------------------------------------------------
STEPS = ["epoch: ^epoch (\\d{1,6})", "test_accuracy: acc=([0-9.]{1,20})",
         "step: ^\\[(\\d{1,9})/\\d{1,9}\\]", "loss: loss=([0-9.]{1,20})"]


@pytest.mark.parametrize("first_step, first_loss", [("0", 2.3046), ("1", 2.3046), ("50", None)])
def test_a_step_line_gives_the_first_batch_loss(tmp_path, first_step, first_loss):
    path = tmp_path / "steps.log"
    path.write_text(f"[{first_step}/100] loss=2.3046\n[99/100] loss=1.9\nepoch 0 acc=41.2\n"
                    "[0/100] loss=1.5\nepoch 1 acc=60.0\n")
    record = parse_log(path, patterns=LogPatterns.from_lines(STEPS))
    state = record.state(0)
    assert state.first_batch_loss == first_loss
    assert [e.train_loss for e in state.epochs] == [1.9, 1.5]
    assert record.notes["lines_not_understood"] == 0


def test_without_a_step_pattern_no_first_batch_loss_is_claimed(tmp_path):
    path = tmp_path / "steps.log"
    path.write_text("[0/100] loss=2.3046\nepoch 0 acc=41.2\n")
    patterns = LogPatterns.from_lines([p for p in STEPS if not p.startswith("step")])
    assert parse_log(path, patterns=patterns).state(0).first_batch_loss is None
