"""GPU placement of xdist workers, and `pytest -n 2` on the smoke suite training each run once."""
import json
from pathlib import Path

import pytest

from harness.placement import PlacementError, scope_of, visible_pool, worker_devices, worker_index

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("worker, visible, count, expected", [
    ("gw0", None, 4, "0"), ("gw3", None, 4, "3"), ("gw5", None, 4, "1"),
    ("gw0", "2,3", 8, "2"), ("gw1", "2, 3", 8, "3"), ("gw2", "2,3", 8, "2"),
    ("gw1", "GPU-aaaa,GPU-bbbb", 0, "GPU-bbbb"),
    ("gw0", None, 0, None), ("gw1", "", 0, None),
])
def test_each_worker_gets_its_own_gpu_round_robin(worker, visible, count, expected):
    assert worker_devices(worker, visible, count) == expected


def test_distinct_gpus_while_there_are_enough():
    pool = visible_pool(None, 4)
    assert sorted(worker_devices(f"gw{i}", None, 4) for i in range(4)) == pool


def test_a_worker_id_that_is_not_xdist_is_named():
    with pytest.raises(PlacementError, match="gw<N>, got 'master'"):
        worker_index("master")


CONFTEST = '''
import json, os
from pathlib import Path
import pytest

@pytest.fixture(autouse=True)
def _log_placement(request, harness_session):
    yield
    out = Path(os.environ["HARNESS_TEST_OUT"])
    runs = {k: [r.run_id, bool(r.notes.get("reused"))] for k, r in harness_session.records.items()}
    line = {"nodeid": request.node.nodeid, "worker": os.environ.get("PYTEST_XDIST_WORKER"),
            "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"), "pid": os.getpid(), "runs": runs}
    with open(out / "placement.jsonl", "a") as fh:
        fh.write(json.dumps(line) + "\\n")
'''

AGAIN = '''
from suites.profiles import BASELINE_CASES as HARNESS_CASES

SUITE = "baseline"

def test_same_run_again(harness, case):
    record = harness.run(case)
    assert record.state(0).epochs

def test_elsewhere_one():
    pass

def test_elsewhere_two():
    pass
'''


@pytest.mark.slow
def test_xdist_pins_workers_groups_tests_by_case_and_trains_each_run_once(pytester, monkeypatch):
    (pytester.path / "test_baseline.py").write_text((ROOT / "suites" / "baseline" / "test_baseline.py")
                                                    .read_text().replace("from ..profiles import",
                                                                         "from suites.profiles import"))
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_again=AGAIN)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7,9")  # the controller's GPUs, handed out per worker
    monkeypatch.setenv("HARNESS_TEST_OUT", str(pytester.path))
    reports = pytester.path / "reports"
    result = pytester.runpytest_subprocess(
        "-n", "2", "--profile", "smoke", "--device", "cpu", "--no-progress", "-p", "no:cacheprovider",
        "--reports-dir", str(reports), "test_baseline.py", "test_again.py", timeout=600)
    n_baseline = (ROOT / "suites" / "baseline" / "test_baseline.py").read_text().count("\ndef test_")
    # test_state0_accuracy passes; the baseline tests that need an --init or a log skip
    result.assert_outcomes(passed=4, skipped=n_baseline - 1)
    lines = [json.loads(x) for x in (pytester.path / "placement.jsonl").read_text().splitlines()]
    assert all(x["cuda"] == {"gw0": "7", "gw1": "9"}[x["worker"]] for x in lines)
    using_case = [x for x in lines if "[digits]" in x["nodeid"]]
    assert len(using_case) == n_baseline + 1 and len({x["worker"] for x in using_case}) == 1  # one group
    trained = {(x["pid"], tuple(r)) for x in lines for r in x["runs"].values() if not r[1]}
    assert len(trained) == 1  # one process trained the run, once
    assert len(list((reports / "runs").glob("*/record.json"))) == 1
    report = json.loads((reports / "latest" / "report.json").read_text())
    assert [v["id"] for v in report["verdicts"]] == ["baseline/digits/state0/accuracy"]
    assert [r["case"] for r in report["runs"]] == ["baseline/digits"] and not report["runs"][0]["reused"]
    assert report["history"]["verdicts"]["baseline/digits/state0/accuracy"]["previous"] is None


@pytest.mark.parametrize("nodeid, scope", [
    ("suites/baseline/test_baseline.py::test_recipe[digits]", "digits"),
    ("t/test_again.py::test_same_run_again[digits]", "digits"),
    ("t/test_a.py::test_x[digits]@baseline/digits", "baseline/digits"),   # pytest kept xdist's suffix
    ("t/test_a.py::test_plain", "t/test_a.py"),
])
def test_tests_of_one_case_share_a_scope(nodeid, scope):
    assert scope_of(nodeid) == scope
