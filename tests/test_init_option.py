"""An init (``--harness-init`` / ``harness_init``) is fixed when read: a relative file from the ini
is found beside the ini file, wherever pytest starts; ``timm:NAME`` is parsed in one place."""
import pytest

from harness.options import OptionError, read_options, resolve
from harness.timmref import TimmRefError, timm_name, timm_ref


def test_timm_name_tells_a_hub_reference_from_a_file():
    assert timm_name("timm:vit_small_patch16_224") == "vit_small_patch16_224"
    assert timm_name(timm_ref("resnet18")) == "resnet18"
    assert timm_name("init/model.pth") is None and timm_name(None) is None
    assert timm_name("mytimm:model.pth") is None


@pytest.mark.parametrize("value", ["timm:", "timm:  "])
def test_timm_name_refuses_an_empty_name_in_one_line(value):
    with pytest.raises(TimmRefError) as err:
        timm_name(value)
    assert "names no model" in str(err.value) and "\n" not in str(err.value)


def _read(tmp_path, cli_init=None, ini_init=""):
    return read_options(lambda d: cli_init if d == "harness_init" else None,
                        lambda k: ini_init if k == "harness_init" else "",
                        tmp_path / "here", tmp_path / "project")


def test_an_ini_init_is_read_from_the_ini_files_folder(tmp_path):
    assert _read(tmp_path, ini_init="init/model.pth").init == str(tmp_path / "project" / "init" / "model.pth")


def test_a_command_line_init_is_read_from_where_pytest_started(tmp_path):
    options = _read(tmp_path, cli_init="init/model.pth", ini_init="other.pth")
    assert options.init == str(tmp_path / "here" / "init" / "model.pth")


@pytest.mark.parametrize("value", ["timm:vit_tiny_patch16_224", "/abs/model.pth"])
def test_a_hub_reference_or_an_absolute_file_is_kept_as_given(tmp_path, value):
    assert _read(tmp_path, ini_init=value).init == value
    assert _read(tmp_path, cli_init=value).init == value


def test_an_empty_timm_init_is_one_line_naming_the_option(tmp_path):
    with pytest.raises(OptionError) as err:
        _read(tmp_path, ini_init="timm:")
    assert str(err.value).startswith("--harness-init 'timm:' names no model") and "\n" not in str(err.value)


def test_a_missing_init_names_the_resolved_path(tmp_path):
    options = _read(tmp_path, ini_init="init/gone.pth")
    with pytest.raises(OptionError) as err:
        resolve(options, cuda_available=False)
    resolved = str(tmp_path / "project" / "init" / "gone.pth")
    assert f"--harness-init {resolved!r}: no such file" in str(err.value)
    assert "read from the ini file's folder" in str(err.value) and "\n" not in str(err.value)


INI = "[pytest]\nharness_init = init/model.pth\n"
SHOW_INIT = """
def test_init(harness_session):
    print("INIT=" + harness_session.options.init)
"""


def _project(pytester):
    pytester.makefile(".ini", pytest=INI)
    pytester.makepyfile(test_show=SHOW_INIT)
    sub = pytester.mkdir("sub")
    return sub


def test_pytest_started_in_a_subfolder_finds_the_ini_init_beside_the_ini(pytester, monkeypatch):
    sub = _project(pytester)
    init = pytester.path / "init" / "model.pth"
    init.parent.mkdir()
    init.write_bytes(b"not judged here")
    monkeypatch.chdir(sub)
    result = pytester.runpytest(str(pytester.path / "test_show.py"), "-s", "-q",
                                "--harness-reports-dir", str(sub / "r"))
    result.assert_outcomes(passed=1)     # (the session then fails: the test judges nothing)
    result.stdout.fnmatch_lines([f"INIT={init}"])


def test_a_missing_ini_init_from_a_subfolder_names_the_path_beside_the_ini(pytester, monkeypatch):
    sub = _project(pytester)
    monkeypatch.chdir(sub)
    result = pytester.runpytest(str(pytester.path / "test_show.py"), "-q",
                                "--harness-reports-dir", str(sub / "r"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    expected = str(pytester.path / "init" / "model.pth")
    assert f"--harness-init {expected!r}: no such file" in result.stderr.str()
    assert str(sub / "init") not in result.stderr.str()
