"""Option validation at the edge: each user mistake is one line naming what to change."""
from pathlib import Path

import pytest

from harness.options import OptionError, Options, read_options, resolve


def test_auto_is_smoke_without_cuda_and_nightly_with_it_and_a_data_root(tmp_path):
    assert resolve(Options(), cuda_available=False).profile.name == "smoke"
    assert resolve(Options(), cuda_available=True).profile.name == "smoke"   # no data root
    init = tmp_path / "init.pth"
    init.write_bytes(b"x")
    r = resolve(Options(data_root=tmp_path, init=str(init)), cuda_available=True)
    assert r.profile.name == "nightly" and r.device.type == "cuda"
    assert [c.path for c in r.checkpoints] == [str(init)]     # the init is judged as a file too


@pytest.mark.parametrize("options, cuda, message", [
    (Options(profile="nightly"), False, "--harness-profile nightly needs a CUDA GPU"),
    (Options(profile="nightly", data_root=Path("/nonexistent")), True, "is not a directory"),
    (Options(profile="smoke", expect=("nonsense",)), False, "expected the form ID>=VALUE"),
    (Options(init="/no/such.pth"), False, "--harness-init '/no/such.pth': no such file"),
    (Options(device="cuda"), False, "no CUDA GPU is visible"),
    (Options(device="tpu"), False, "--harness-device 'tpu'"),
    (Options(threads=0), False, "--harness-threads must be a whole number >= 1"),
    (Options(checkpoints=(Path("/no/file.pth"),)), False, "--harness-checkpoints: no such file"),
    (Options(bars=("imagenet/top1 >> 3",)), False, "harness_bars in the ini file"),
])
def test_user_mistakes_are_one_line(options, cuda, message):
    with pytest.raises(OptionError) as err:
        resolve(options, cuda_available=cuda)
    text = str(err.value)
    assert message in text and "\n" not in text


def test_command_line_wins_over_the_ini_file_and_paths_resolve_where_given(tmp_path):
    cli = {"harness_profile": "auto", "harness_reports_dir": Path("out"), "harness_threads": 1}
    ini = {"harness_profile": "smoke", "harness_reports_dir": "r", "harness_threads": "2",
           "harness_bars": ["imagenet/top1 >= 75.9 % -- top-1"]}
    options = read_options(lambda d: cli.get(d), lambda k: ini.get(k, ""), tmp_path / "here",
                           tmp_path / "ini")
    assert options.profile == "smoke" and options.threads == 2      # from the ini
    assert options.reports_dir == tmp_path / "here" / "out"         # the command line wins
    assert options.bars == ("imagenet/top1 >= 75.9 % -- top-1",)
    assert set(options.given) == {"profile", "reports_dir", "threads", "bars"}
    bar = resolve(options, cuda_available=False).config_bars[0]
    assert (bar.id, bar.op, bar.threshold, bar.unit, bar.title) == ("imagenet/top1", ">=", 75.9, "%", "top-1")


def test_a_bad_ini_value_names_the_key(tmp_path):
    with pytest.raises(OptionError, match="harness_threads = 'two' in the ini file"):
        read_options(lambda d: None, lambda k: "two" if k == "harness_threads" else "", tmp_path,
                     tmp_path)


def test_a_labs_log_format_is_declared_in_the_ini_file_and_read(tmp_path):
    log = tmp_path / "lab.log"
    log.write_text("args: dataset=cifar10, epochs=3\n"
                   "[ep 0] loss 2.1 | top1 0.31\n[ep 1] loss 1.2 | top1 0.55\n[ep 2] loss 0.9 | top1 0.61\n")
    lines = ("epoch: ^\\[ep (\\d+)\\]", "test_accuracy: top1 ([0-9.]+)", "loss: loss ([0-9.]+)",
             "arguments: ^args: ")
    resolved = resolve(Options(from_log=log, log_patterns=lines), cuda_available=False)
    record = resolved.log_record
    assert record.dataset == "cifar10" and [e.test_accuracy for e in record.state(0).epochs] == [31.0, 55.0, 61.0]
    with pytest.raises(OptionError, match="harness_log_patterns in the ini file"):
        resolve(Options(log_patterns=("epoch: (a+)+",)), cuda_available=False)
