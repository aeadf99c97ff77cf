"""Issue 22, item 8: a log's absolute init is a claim only (never opened), check_epoch with no
epoch is a failing verdict, a bad harness_bars line names harness_bars, and a legacy .tar
checkpoint says what it is and what to do, whole."""
import io
import pickle
import tarfile
from pathlib import Path

import pytest
import torch

from harness.expect import ExpectationError
from harness.options import OptionError, Options, resolve
from harness.runfolder import NotJudged, open_folder
from harness.session import HarnessSession
from harness.suite import Bar
from tests.test_runfolder import _relog, write_folder

ROOT = Path(__file__).resolve().parent.parent


def test_a_logs_absolute_init_is_a_claim_and_the_local_file_is_not_read(tmp_path):
    """A local file at the absolute path the log names (a valid init) was opened and judged;
    now only a file of that name inside the run folder would be."""
    folder = write_folder(tmp_path)
    local = tmp_path / "secret" / "local.pth"
    local.parent.mkdir()
    local.write_bytes((tmp_path / "init_model" / "tiny.pth.tar").read_bytes())
    _relog(folder, init=str(local))
    run = open_folder(folder)
    assert run.init is None
    trained = {o.state: o for o in run.outcomes("trained")}[0]
    assert isinstance(trained, NotJudged)
    assert trained.reason.startswith(f"the init file the log's arguments name ({str(local)!r}) was "
                                     f"not found where the run ran nor in the run folder")


def test_the_baseline_suite_does_not_judge_a_local_file_a_log_names(pytester, tmp_path):
    """--from-log: the log's init='/abs/...' exists on this machine; test_init_not_random skips
    (a log's init is a claim only) instead of inspecting that file."""
    from fixtures.logs import SEED_RUN, write_research_log
    from dataclasses import replace

    local = tmp_path / "local_init.pth"
    torch.save({"w": torch.zeros(2, 2)}, local)
    log = write_research_log(replace(SEED_RUN, init=str(local)), tmp_path / "run.log")
    result = pytester.runpytest(str(ROOT / "suites" / "baseline"), "--reports-dir",
                                str(pytester.path / "reports"), "-q", "-p", "no:randomly", "-rs",
                                "--from-log", str(log), "-k", "init_not_random")
    output = "\n".join(result.outlines)
    assert "a log's init is a claim only, no file is read or judged" in output
    assert "1 skipped" in output


def _recorder(tmp_path):
    options = Options(profile="smoke", device="cpu", reports_dir=tmp_path, no_progress=True)
    hs = HarnessSession(options, resolve(Options(profile="smoke"), cuda_available=False))
    hs.book.add([Bar("mine/x/state0/accuracy", "State 0 accuracy", ">=", 50.0, "%")], "test")
    return hs.recorder("test::epoch")


def test_check_epoch_of_no_epoch_is_a_failing_verdict_saying_why(tmp_path):
    recorder = _recorder(tmp_path)
    verdict = recorder.check_epoch("mine/x/state0/accuracy", None)
    assert not verdict.passed
    assert "no epoch to judge: the state holds no evaluated epoch" in verdict.evidence["note"]
    with pytest.raises(ExpectationError, match="epoch must be an EpochRecord .* got float"):
        recorder.check_epoch("mine/x/state0/accuracy", 97.0)


@pytest.mark.parametrize("line, said", [
    ("a/b >= x %", "harness_bars in the ini file: harness_bars line 'a/b >= x %': expected the form "
                   "ID>=VALUE, ID<=VALUE or ID==VALUE, e.g. 'baseline/imagenet/state0/accuracy >= 75.9 %'"),
    ("a/b >= 1e999 %", "harness_bars in the ini file: harness_bars line 'a/b >= 1e999 %': VALUE must "
                       "be a finite number"),
])
def test_a_bad_harness_bars_line_names_harness_bars_not_expect(line, said):
    with pytest.raises(OptionError) as caught:
        resolve(Options(bars=(line,)), cuda_available=False)
    assert said in str(caught.value) and "--expect" not in str(caught.value)


def test_a_legacy_tar_checkpoint_says_what_it_is_and_what_to_do_whole(tmp_path, capsys):
    from harness.cli import main

    path = tmp_path / "old.pth.tar"
    with tarfile.open(path, "w") as archive:     # torch < 0.4's layout: sys_info, pickle, ...
        for name, value in (("sys_info", {"protocol_version": 1001}), ("pickle", {"a": 1}),
                            ("storages", 0), ("tensors", 0)):
            data = pickle.dumps(value)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    assert main(["inspect", str(path)]) == 1
    out = capsys.readouterr().out
    assert (f"{path}: a checkpoint in torch's legacy .tar format (torch before 0.4), which torch "
            f"reads only by running its pickle (weights_only=False), never done here on a user's "
            f"file; load it once where you trust its origin and save its state_dict again with "
            f"today's torch.save, or as .safetensors, then pass that file") in out
