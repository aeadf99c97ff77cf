"""The bundled suites installed with the package (harness.suites, `harness suites NAME`), run
from a user's project with that project's ini file; the project's commit in the reports; a
session that judged nothing fails; --collect-only writes nothing."""
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from harness.bundled import borrowed_ini, joined
from harness.environment import commit_of, environment, git_commit

ROOT = Path(__file__).resolve().parent.parent


def test_the_packages_pyproject_lists_are_the_folders_it_maps():
    """pyproject.toml lists its packages (package-dir maps harness.suites onto suites/): a new
    subpackage missing from the list would be left out of every install."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {"harness.suites": "suites"}
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "harness").rglob("__init__.py")}
    found |= {"harness." + ".".join(p.parent.relative_to(ROOT).parts)
              for p in (ROOT / "suites").rglob("__init__.py")}
    assert sorted(config["packages"]) == sorted(found)


def test_harness_options_are_joined_to_their_values_and_others_left_alone():
    assert joined(["--harness-from-log", "a.log", "-q", "--from-run", "d", "-k", "x", "--harness-rerun"]) \
        == ["--harness-from-log=a.log", "-q", "--from-run=d", "-k", "x", "--harness-rerun"]


def _ini(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    return folder / "pyproject.toml"


def test_an_ini_file_borrowed_from_an_option_value_is_named(tmp_path):
    project, other = tmp_path / "project", tmp_path / "clone"
    mine, theirs = _ini(project), _ini(other)
    (other / "logs").mkdir()
    (other / "tests").mkdir()
    (other / "logs" / "run.log").write_text("x\n")
    args = ["--pyargs", "harness.suites.pruning", "--harness-from-log", "../clone/logs/run.log"]
    why = borrowed_ini(args, theirs, project, [])
    assert f"pytest took {theirs} as its ini file, from the path given to --harness-from-log" in why
    assert "write --harness-from-log=../clone/logs/run.log" in why
    assert borrowed_ini(args, mine, project, []) == ""                       # the project's own
    assert borrowed_ini(args, mine, project / "sub", []) == ""               # from a subfolder
    assert borrowed_ini(args, theirs, project, ["../clone/tests"]) == ""     # a test path there
    assert borrowed_ini(args, None, project, []) == ""


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), "-c", "user.email=t@t", "-c", "user.name=t",
                           *args], check=True, capture_output=True, text=True).stdout.strip()


def test_the_reports_carry_the_projects_commit_and_the_harness_commit_apart(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "train.py").write_text("print(1)\n")
    _git(project, "init", "-q")
    _git(project, "add", ".")
    _git(project, "commit", "-qm", "first")
    env = environment(None, project)
    assert env["git_commit"] == _git(project, "rev-parse", "HEAD") and env["project"] == str(project)
    assert env["harness_commit"] == git_commit() != env["git_commit"]
    assert git_commit().split("+")[0] == _git(ROOT, "rev-parse", "HEAD")   # this checkout
    (project / "train.py").write_text("print(2)\n")
    commit_of.cache_clear()
    assert environment(None, project)["git_commit"].endswith("+dirty")
    plain = tmp_path / "not_a_checkout"
    plain.mkdir()
    assert environment(None, plain)["git_commit"] == "unknown (not a git checkout)"


NO_CASE_HERE = '''
from harness.suite import Bar, Case, Recipe, RunSpec

SUITE = "mine"
HARNESS_CASES = [Case("digits", RunSpec(model="vit_tiny_digits", dataset="digits",
                                        recipe=Recipe(epochs=1)), profiles=("nightly",))]
HARNESS_BARS = [Bar("mine/digits/state0/accuracy", "accuracy", ">=", 90.0, "%")]

def test_accuracy(harness, case):
    harness.check_epoch("mine/digits/state0/accuracy", harness.run(case).state(0).best_epoch)
'''

SKIPS = '''
import pytest

def test_judges_a_folder(harness):
    pytest.skip("trained of pruning/rsst: a log stores no weights: pass --harness-from-run DIR")

def test_judges_another(harness):
    pytest.skip("rewind of pruning/rsst: a log stores no weights: pass --harness-from-run DIR")

def test_plain():
    pass
'''


def test_a_module_without_a_case_in_this_profile_judges_nothing_and_fails(pytester):
    """Issue 21 item 3: skips only ('got empty parameter set'), exit 0. Now exit 1 and one line
    saying why and what to pass."""
    pytester.makepyfile(test_mine=NO_CASE_HERE)
    result = pytester.runpytest("--harness-profile", "smoke", "--harness-reports-dir", "r", "-q")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["harness: FAILED: the harness tests judged nothing (1 test: 1 "
                                 "skipped; no verdict recorded): suite mine declares no case for "
                                 "profile smoke: pass --harness-profile nightly"])
    assert '"exit_status": 1' in (pytester.path / "r" / "latest" / "report.json").read_text()


def test_skipped_harness_tests_fail_the_session_with_their_commonest_reason(pytester):
    pytester.makepyfile(test_skips=SKIPS)
    result = pytester.runpytest("--harness-reports-dir", "r", "-q")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["harness: FAILED: the harness tests judged nothing (2 tests: 2 "
                                 "skipped; no verdict recorded): 2 of them skipped: a log stores no "
                                 "weights: pass --harness-from-run DIR"])


def test_collect_only_writes_nothing(pytester):
    """Issue 21 item 4: --collect-only recorded a FAILED session in the report and history."""
    pytester.makepyfile(test_mine=NO_CASE_HERE, test_skips=SKIPS)
    result = pytester.runpytest("--harness-reports-dir", "r", "--collect-only", "-q")
    assert result.ret == 0
    assert not (pytester.path / "r").exists() and "harness: FAILED" not in result.stdout.str()


LAB_INI = '''[tool.pytest.ini_options]
harness_reports_dir = "lab-reports"
harness_log_patterns = ["epoch: ^\\\\[ep (\\\\d+)\\\\]", "test_accuracy: top1 ([0-9.]+)", "arguments: ^args: "]
harness_bars = ["baseline/imagenet/state0/accuracy >= 60 % -- State 0 top-1 on the lab's ImageNet"]
'''


@pytest.mark.slow
def test_an_installed_harness_runs_a_bundled_suite_with_the_projects_ini(tmp_path):
    """Issue 21 item 1 end to end: a normal (not editable) install of this checkout, then
    `harness suites baseline --harness-from-log LOG` in a project whose log lies beside another
    project's ini file: the project's ini file decides the reports folder, the log format and
    the bar; the reports carry the project's commit."""
    src, site = tmp_path / "src", tmp_path / "site"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("harness", "suites"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--no-build-isolation", "--target", str(site), str(src)], check=True,
                   capture_output=True)
    assert (site / "harness" / "suites" / "pruning" / "test_pruning.py").is_file()
    elsewhere, project = tmp_path / "elsewhere", tmp_path / "project"
    _ini(elsewhere).write_text('[tool.pytest.ini_options]\nharness_reports_dir = "decoy"\n')
    (elsewhere / "lab.log").write_text("args: dataset=imagenet, epochs=3\n[ep 0] top1 0.31\n"
                                       "[ep 1] top1 0.55\n[ep 2] top1 0.61\n")
    _ini(project).write_text(LAB_INI)
    _git(project, "init", "-q")
    _git(project, "add", ".")
    _git(project, "commit", "-qm", "lab")
    result = subprocess.run([sys.executable, "-m", "harness.cli", "suites", "baseline",
                             "--harness-from-log", "../elsewhere/lab.log", "-p", "no:cacheprovider"],
                            cwd=project, capture_output=True, text=True, timeout=600,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site), "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS  baseline/imagenet/state0/accuracy     61.00%" in result.stdout
    assert f"rootdir: {project}\nconfigfile: pyproject.toml" in result.stdout
    report = (project / "lab-reports" / "latest" / "report.json").read_text()
    assert _git(project, "rev-parse", "HEAD") in report
    assert '"harness_commit": "none (installed package, version' in report   # not this checkout
    assert not (elsewhere / "decoy").exists()
