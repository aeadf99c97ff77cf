"""Small suites for the executor tests: a pruning run of 3 short states on the digits (its State 0
is a short dense run it shares), written into a temporary project and run by a real pytest."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from harness.suite import Bar, Case, PruneSpec, Recipe, RunSpec

ROOT = Path(__file__).resolve().parent.parent
SMALL_RECIPE = Recipe(epochs=2, batch_size=32, lr=1e-3, optimizer="adamw", weight_decay=0.05,
                      label_smoothing=0.1, augment="none", eval_batch_size=512)
SMALL_DENSE = RunSpec(model="vit_tiny_digits", dataset="digits", recipe=SMALL_RECIPE, seed=0,
                      label="small dense")
SMALL_STATES = 3
SMALL_CASES = [Case("refill", replace(SMALL_DENSE, label="small refill", prune=PruneSpec(
    method="refill", states=SMALL_STATES, final_sparsity=0.5, rewind="none",
    state_recipe=replace(SMALL_RECIPE, epochs=3))))]
# the stored accuracy of each state, judged against a floor every trained state clears
SMALL_BARS = [Bar(f"small/refill/state{k}/accuracy", f"refill State {k} accuracy", ">=", 20.0, "%")
              for k in range(SMALL_STATES + 1)]

SMALL_SUITE = '''
from harness.prune.measurement import stored_accuracy
from tests.executor_support import SMALL_BARS, SMALL_CASES

SUITE = "small"
HARNESS_CASES = SMALL_CASES
HARNESS_BARS = SMALL_BARS


def test_states(harness, case):
    record = harness.run(case)
    for state in record.states:
        correct, n = stored_accuracy(state)
        harness.check_accuracy(f"small/{case.name}/state{state.index}/accuracy", correct, n)
'''

FAILING_MODEL = '''
from pathlib import Path


def factory(num_classes):
    with open(Path(__file__).with_name("attempts.txt"), "a") as fh:
        fh.write("called\\n")
    print("factory: building the model")
    print("factory: about to fail")
    raise RuntimeError("deliberate failure of the model factory")
'''

DYING_MODEL = '''
import os
import signal
from pathlib import Path


def factory(num_classes):
    with open(Path(__file__).with_name("attempts.txt"), "a") as fh:
        fh.write(f"pid {os.getpid()}\\n")
    print("factory: the process dies now")
    os.kill(os.getpid(), signal.SIGKILL)
'''

FAILING_SUITE = '''
from harness.suite import Bar, Case, RunSpec
from tests.executor_support import SMALL_RECIPE

SUITE = "failing"
HARNESS_CASES = [Case("broken", RunSpec(model="MODULE:factory", dataset="digits",
                                         recipe=SMALL_RECIPE, label="broken run"))]
HARNESS_BARS = [Bar("failing/broken/state0/accuracy", "accuracy", ">=", 0.0, "%")]


def test_accuracy(harness, case):
    record = harness.run(case)
    harness.check_epoch("failing/broken/state0/accuracy", record.state(0).best_epoch)
'''


def write_project(folder: Path, files: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def pytest_command(project: Path, reports: Path, *args: str) -> list:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(project),
            "--harness-reports-dir", str(reports), *args]


def environment(**extra: str) -> dict:
    """This process's environment with the project root importable (for ``tests.*``)."""
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths), **extra)


def run_pytest(project: Path, reports: Path, *args: str, cwd: Path = ROOT, timeout: int = 900,
               env: dict | None = None):
    return subprocess.run(pytest_command(project, reports, *args), cwd=cwd,
                          env=env or environment(), capture_output=True, text=True,
                          timeout=timeout)


def report(reports: Path) -> dict:
    return json.loads((reports / "latest" / "report.json").read_text())


def verdict_values(reports: Path) -> dict:
    """Each verdict's id -> (observed, passed, threshold)."""
    return {v["id"]: (v["observed"], v["passed"], v["threshold"]) for v in report(reports)["verdicts"]}
