"""Issue 22 item 3: ``CommandSpec(env={...})`` values (an API token) were copied into report.json,
report.html (a CI artifact), record.json and the history. Their names stay; their values reach the
command and key the run, and are written nowhere."""
import hashlib
import shutil
import sys
from pathlib import Path

import pytest

from harness.command import REDACTED, CommandFailed, CommandSpec, command_key, execute

SECRET = "tok-3f9c1e7a-not-for-reports"
DIGEST = hashlib.sha256(SECRET.encode()).hexdigest()
LAB = Path(__file__).parent / "data" / "lab" / "train_fractions.py"
PATTERNS = [r"epoch: ^\[ep (\d{1,6})\]", r"test_accuracy: val_top1=([0-9.]{1,20})",
            "arguments: ^args: ", "accuracy_scale: fraction"]

# the command proves the token reached it without printing or writing it
WRAPPER = """
import hashlib, os, runpy, sys
token = os.environ.get("LAB_API_TOKEN", "")
if hashlib.sha256(token.encode()).hexdigest() != sys.argv[1]:
    sys.exit("LAB_API_TOKEN did not reach the command")
sys.argv = ["train.py", "4"]
runpy.run_path("train.py", run_name="__main__")
"""

SUITE = f"""
import sys
from harness.suite import Bar, Case, CommandSpec

HARNESS_CASES = [Case("lab", CommandSpec(argv=(sys.executable, "wrapper.py", "{DIGEST}"),
                                         env={{"LAB_API_TOKEN": "{SECRET}"}}))]
HARNESS_BARS = [Bar("lab/top1", "top-1 of train.py", ">=", 95.0, "%")]   # fails: its spec is shown


def test_top1(harness, case):
    record = harness.run(case)
    assert record.spec["command"]["env"] == {{"LAB_API_TOKEN": "<redacted>"}}
    harness.check_epoch("lab/top1", record.state(0).best_epoch)
"""


def _files_holding(folder: Path, needle: bytes) -> list:
    return sorted(str(p) for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes())


def test_an_env_value_is_in_no_byte_the_session_writes_nor_on_the_terminal(pytester):
    shutil.copy(LAB, pytester.path / "train.py")
    (pytester.path / "wrapper.py").write_text(WRAPPER)
    listed = "".join(f"    '{p}',\n" for p in PATTERNS)
    pytester.makepyprojecttoml(f"[tool.pytest.ini_options]\nharness_log_patterns = [\n{listed}]\n")
    pytester.makepyfile(test_lab=SUITE.replace("{SECRET}", SECRET))
    reports = pytester.path / "reports"
    runs = []
    for _ in range(2):                       # ran, then reused from the store
        result = pytester.runpytest("-q", "-p", "no:randomly", "-p", "no:cacheprovider", "-vv",
                                    "--harness-reports-dir", str(reports), "--showlocals")
        runs.append(result)
        assert result.ret == 1, "\n".join(result.outlines[-30:])   # the bar fails; the run ran
    assert (pytester.path / "ran.txt").read_text() == "ran\n"     # the token reached the command
    assert (reports / "latest" / "report.html").is_file() and (reports / "history.sqlite").is_file()
    written = [p for p in reports.rglob("*") if p.is_file()]
    assert any(p.name == "record.json" for p in written)
    assert _files_holding(reports, SECRET.encode()) == []
    assert _files_holding(reports, SECRET[:12].encode()) == []
    for result in runs:
        assert SECRET not in "\n".join(result.outlines + result.errlines)
    assert b"LAB_API_TOKEN" in (reports / "latest" / "report.json").read_bytes()   # the name stays


def test_the_value_still_keys_the_run_and_never_reaches_a_message(tmp_path):
    first = CommandSpec(argv=(sys.executable, "-V"), env={"TOKEN": "a" * 20})
    second = CommandSpec(argv=(sys.executable, "-V"), env={"TOKEN": "b" * 20})
    assert command_key(first, tmp_path)[0] != command_key(second, tmp_path)[0]
    assert first.to_dict()["env"] == {"TOKEN": REDACTED} and "a" * 20 not in repr(first)
    with pytest.raises(ValueError) as refused:
        CommandSpec(argv=("x",), env={"TOKEN": "secret-value", "N": 3})
    assert str(refused.value) == ("CommandSpec.env must map strings to strings; its entry 'N' "
                                  "holds str, int")


def test_a_command_that_prints_its_token_leaves_it_in_no_log_line_or_failure(tmp_path):
    """A training script that echoes its environment (a debug print, a config dump) put the
    token into output.log, the live output and the failure's last lines (report.html)."""
    script = ("import os, sys\nprint('config:', os.environ['LAB_API_TOKEN'], 'retries=3')\n"
              "sys.exit(f\"auth with {os.environ['LAB_API_TOKEN']} failed\")\n")
    spec = CommandSpec(argv=(sys.executable, "-c", script), env={"LAB_API_TOKEN": SECRET, "N": "1"})
    shown = []
    with pytest.raises(CommandFailed) as failed:
        execute(spec, tmp_path, tmp_path / "output.log", echo=shown.append)
    log = (tmp_path / "output.log").read_bytes()
    assert SECRET.encode() not in log and b"config: <redacted> retries=3" in log
    assert "auth with <redacted> failed" in failed.value.tail
    assert SECRET not in "\n".join(shown + failed.value.tail)
