"""Issue 22 item 7: a ``module:attribute`` path naming a module that is missing, has a
SyntaxError or raises at import, an attribute that is missing or raises, a non-callable, or a
factory that raises gave a traceback (or an INTERNALERROR) instead of one line naming the path
and the error. Real modules on disk, imported for real."""
import json
import sys

import pytest

from harness.data import DataError, load_dataset
from harness.imports import ImportPathError, load_callable
from harness.models import ModelError, create_model

MODULES = {
    "i22_syntax": "def factory(:\n    pass\n",
    "i22_raises_at_import": "raise RuntimeError('no GPU at import')\n",
    "i22_getattr": "def __getattr__(name):\n    raise KeyError(name)\n",
    "i22_plain": "x = 3\n\n\ndef factory(num_classes):\n    raise ValueError('bad width 0')\n",
}


@pytest.fixture
def project(tmp_path, monkeypatch):
    for name, text in MODULES.items():
        (tmp_path / f"{name}.py").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in MODULES:
        sys.modules.pop(name, None)


@pytest.mark.parametrize("path, expected", [
    ("i22_syntax:factory", "model 'i22_syntax:factory': importing 'i22_syntax' failed: "
                           "SyntaxError: invalid syntax (at i22_syntax.py:1)"),
    ("i22_raises_at_import:f", "model 'i22_raises_at_import:f': importing 'i22_raises_at_import' "
                               "failed: RuntimeError: no GPU at import (at i22_raises_at_import.py:1)"),
    ("i22_getattr:f", "model 'i22_getattr:f': reading 'f' failed: KeyError: 'f' (at i22_getattr.py:2)"),
    ("i22_plain:missing", "model 'i22_plain:missing': 'i22_plain' has no attribute 'missing'"),
    ("i22_plain:x", "model 'i22_plain:x' is a int, not a callable"),
    ("i22_no_such_module:f", "model 'i22_no_such_module:f': cannot import 'i22_no_such_module' "
                             "(No module named 'i22_no_such_module'); is the project on sys.path "
                             "(run pytest from its root)?"),
])
def test_a_broken_import_path_is_one_line_naming_it(project, path, expected):
    with pytest.raises(ImportPathError) as refused:
        load_callable(path, "model")
    assert str(refused.value) == expected


def test_a_factory_that_raises_is_one_line_naming_the_path_and_where(project):
    with pytest.raises(ModelError) as refused:
        create_model("i22_plain:factory", 10)
    assert str(refused.value) == ("model 'i22_plain:factory' raised ValueError: bad width 0 "
                                  "(at i22_plain.py:5)")
    with pytest.raises(DataError) as refused:          # called with data_root: a TypeError
        load_dataset("i22_plain:factory", None)
    assert str(refused.value).startswith("dataset 'i22_plain:factory' raised TypeError: ")
    assert "(at " not in str(refused.value)    # raised by the call itself: no user frame to name


SUITE = """
import os
from harness.suite import Bar, Case, Recipe, RunSpec

RECIPE = Recipe(epochs=1, batch_size=32, lr=1e-3, optimizer="adamw", augment="none",
                eval_batch_size=512)
HARNESS_CASES = [Case("c", RunSpec(model="{model}", dataset="digits", recipe=RECIPE, label="x"))]
HARNESS_BARS = [Bar("imp/c/state0/accuracy", "accuracy", ">=", 0.0, "%")]


def test_accuracy(harness, case):
    harness.check("imp/c/state0/accuracy", harness.run(case).state(0).best_accuracy)
"""


@pytest.mark.parametrize("model, line", [
    ("i22_syntax:factory", "SyntaxError: invalid syntax (at i22_syntax.py:1)"),
    ("i22_plain:factory", "raised ValueError: bad width 0 (at i22_plain.py:5)"),
])
def test_a_session_says_it_in_one_line_without_a_traceback(pytester, model, line):
    for name, text in MODULES.items():
        pytester.makepyfile(**{name: text})
    pytester.makepyfile(test_imp=SUITE.replace("{model}", model))
    pytester.syspathinsert()
    try:
        result = pytester.runpytest("-q", "-p", "no:randomly", "-p", "no:cacheprovider",
                                    "--harness-reports-dir", str(pytester.path / "reports"))
    finally:
        for name in MODULES:
            sys.modules.pop(name, None)
    output = "\n".join(result.outlines + result.errlines)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "INTERNALERROR" not in output and "Traceback" not in output
    assert f"imp/c: model '{model}'" in output and line in output


def test_harness_run_says_it_in_one_line(project, capsys):
    from harness.cli import main
    from harness.spec import RunSpec

    spec = project / "spec.json"
    spec.write_text(json.dumps(RunSpec(model="i22_plain:factory", dataset="digits").to_dict()))
    assert main(["run", "--spec", str(spec), "--device", "cpu", "--no-progress",
                 "--reports-dir", str(project / "reports")]) == 2
    assert capsys.readouterr().err == ("harness run: error: model 'i22_plain:factory' raised "
                                       "ValueError: bad width 0 (at i22_plain.py:5)\n")
