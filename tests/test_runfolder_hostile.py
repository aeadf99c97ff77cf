"""Run folders judged loudly (issue 22, item 4): two files for one state refused, state numbers
in ASCII digits only, an impossible log line failing its state's log_consistency, a linked state
file named where the state is judged, a repeating view inside a stored state refused, and a
folder of junk cheap with a bounded error line. Real folders and torch files written here."""
import re
import time

import pytest
import torch

from harness.runfolder import Finding, NotJudged, RunFolderError, open_folder
from harness.runfolder.layout import find_layout
from tests.test_runfolder import write_folder


def _by_state(run, check: str) -> dict:
    return {o.state: o for o in run.outcomes(check)}


@pytest.mark.parametrize("twin", ["00001checkpoint.pth.tar", "\u0661checkpoint.pth.tar"],
                         ids=["leading-zeros", "arabic-indic-digit"])
def test_two_files_for_one_state_are_refused_naming_both(tmp_path, twin):
    folder = write_folder(tmp_path)
    (folder / twin).write_bytes((folder / "0checkpoint.pth.tar").read_bytes())   # a decoy
    with pytest.raises(RunFolderError) as caught:
        find_layout(folder)
    pair = " and ".join(sorted(["1checkpoint.pth.tar", twin]))
    assert f"{pair} both name state 1 (checkpoint {{k}}checkpoint.pth.tar); keep one" in str(caught.value)


def test_a_state_number_in_other_digits_is_not_read_and_named(tmp_path):
    folder = write_folder(tmp_path)
    (folder / "\u0662checkpoint.pth.tar").write_bytes((folder / "0checkpoint.pth.tar").read_bytes())
    layout = find_layout(folder)
    assert layout.indices() == [0, 1]
    assert layout.skipped == ["\u0662checkpoint.pth.tar: its state number '\u0662' is not ASCII "
                              "digits 0-9; not read"]


@pytest.mark.parametrize("value", ["1e308", "nan"])
def test_an_impossible_remaining_line_fails_its_states_log_consistency(tmp_path, value):
    """The refused line made log_consistency of state 0 vanish (an impossible log passed where
    a plausible lie failed); now state 0's verdict fails, naming the line and why."""
    folder = write_folder(tmp_path)
    log = folder / "train.log"
    lines = log.read_text().splitlines()
    at = lines.index("Remaining weights: 100.00%")          # state 0's start
    lines[at] = f"Remaining weights: {value}%"
    log.write_text("\n".join(lines) + "\n")
    outcome = _by_state(open_folder(folder), "log_consistency")[0]
    assert isinstance(outcome, Finding)
    verdict = outcome.verdict()
    assert not verdict.passed
    assert verdict.evidence["log_lines"][0].startswith(f"log line {at + 1}: refused (remaining weights")
    assert "the log states no possible sparsity for state 0" in verdict.evidence["note"]


def test_a_linked_state_file_is_named_where_the_state_is_judged(tmp_path):
    folder = write_folder(tmp_path)
    best = folder / "1model_SA_best.pth.tar"
    best.write_bytes((folder / "1checkpoint.pth.tar").read_bytes())
    elsewhere = tmp_path / "elsewhere.pth.tar"
    (folder / "1checkpoint.pth.tar").rename(elsewhere)
    (folder / "1checkpoint.pth.tar").symlink_to(elsewhere)
    run = open_folder(folder)
    verdict = _by_state(run, "sparsity")[1].verdict()
    said = (f"1checkpoint.pth.tar: a link (to {elsewhere}), not followed; state 1 is judged from "
            f"1model_SA_best.pth.tar")
    assert verdict.evidence["file"] == "1model_SA_best.pth.tar"
    assert verdict.evidence["files_not_read"] == [said] and said in verdict.line()


def test_a_state_stored_only_as_a_link_is_named_not_judged(tmp_path):
    folder = write_folder(tmp_path)
    elsewhere = tmp_path / "elsewhere.pth.tar"
    (folder / "1checkpoint.pth.tar").rename(elsewhere)
    (folder / "1checkpoint.pth.tar").symlink_to(elsewhere)
    outcome = _by_state(open_folder(folder), "sparsity")[1]
    assert isinstance(outcome, NotJudged)
    assert outcome.reason.endswith("not followed; state 1 has no file to judge")


def test_a_log_state_without_a_stored_file_is_named_not_judged(tmp_path):
    folder = write_folder(tmp_path)
    (folder / "1checkpoint.pth.tar").unlink()
    outcome = _by_state(open_folder(folder), "trained")[1]
    assert isinstance(outcome, NotJudged)
    assert outcome.reason == f"state 1 is in the log, but {folder} stores no file of it"


def test_a_repeating_view_inside_a_stored_state_is_refused_before_it_is_expanded(tmp_path):
    """A stride-0 view claims numel elements over a storage of one (4 GB once .float()-ed at
    scale); it is refused as checkpoint inspection refuses it."""
    folder = write_folder(tmp_path)
    path = folder / "1checkpoint.pth.tar"
    saved = torch.load(path, weights_only=True)
    name = "blocks.0.mlp.fc1.weight_orig"
    saved["state_dict"][name] = torch.zeros(1).expand(*saved["state_dict"][name].shape)
    torch.save(saved, path)
    with pytest.raises(RunFolderError, match=re.escape(f"{path}: {name} claims 512 elements (shape "
                                                       f"(32, 16), strides (0, 0)) over a storage of 1")):
        open_folder(folder).outcomes("sparsity")


def test_a_folder_of_thousands_of_junk_logs_is_cheap_and_its_error_one_short_line(tmp_path):
    folder = write_folder(tmp_path)
    (folder / "train.log").unlink()
    for i in range(3000):
        (folder / f"junk{i:05d}.log").write_text("nothing here\n")
    started = time.process_time()
    with pytest.raises(RunFolderError) as caught:
        open_folder(folder)
    spent = time.process_time() - started
    message = str(caught.value)
    assert "\n" not in message and len(message) < 2000
    assert "3,000 .log/.txt/.out files in the folder: only the first 8 by name read" in message
    assert "junk00000.log" in message and "junk02999" not in message
    assert spent < 30          # CPU seconds: 8 logs read, not 3,000 (generous on a loaded machine)


def test_a_declared_logs_state_number_in_other_digits_or_too_long_is_refused_and_named(tmp_path):
    """A declared state pattern's group of '\u0661' read as state 1 and 5000 digits raised deep
    in int(); both are refused, named in the log's problems, and their lines read for no state."""
    from harness.runfolder.declaration import layout_from_lines
    from harness.runfolder.lablog import read_lab_log

    spec = layout_from_lines(["checkpoint: s{k}.pth", "state: ^round (\\S{1,6000})",
                              "remaining: (?P<remaining>[0-9.]{1,9})% left"], "test")
    log = tmp_path / "log.txt"
    log.write_text(f"round \u0661\n40.0% left\nround {'7' * 5000}\n30.0% left\nround 2\n20.0% left\n")
    lab = read_lab_log(log, spec)
    assert list(lab.remaining) == [2]
    assert lab.problems[0].startswith("log line 1: the state pattern's group '\u0661' (1 characters) is "
                                      "not a whole number of 1 to 12 ASCII digits")
    assert "log line 3: the state pattern's group '7777" in lab.problems[2]
