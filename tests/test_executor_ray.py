"""The Ray executor end to end: real pytest sessions whose runs train as Ray tasks on a local Ray
(2 CPUs here), compared with the local executor; a Ray worker killed mid-run; a run failing for
its own reasons; a worker node that cannot write the runs store."""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.executor_support import (FAILING_MODEL, FAILING_SUITE, ROOT, SMALL_STATES, SMALL_SUITE,
                                    environment, pytest_command, report, run_pytest,
                                    verdict_values, write_project)

pytest.importorskip("ray", reason="the Ray executor needs Ray: pip install -e '.[ray]'")
pytestmark = pytest.mark.slow
RAY = ("--harness-executor", "ray")


def _ok(result):
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def _task_pids(log: Path) -> list:
    return [int(line.split(" in pid ")[1].split()[0]) for line in log.read_text().splitlines()
            if line.startswith("--- harness ray task:")]


def test_suites_on_ray_give_the_local_verdicts_and_a_second_session_submits_nothing(tmp_path):
    suites = ("suites/baseline", "suites/pruning")
    local, ray_reports = tmp_path / "local", tmp_path / "ray"
    _ok(run_pytest(ROOT / suites[0], local, str(ROOT / suites[1]), "--harness-rerun"))
    first = run_pytest(ROOT / suites[0], ray_reports, str(ROOT / suites[1]), "--harness-rerun", *RAY)
    _ok(first)
    assert "ray: submitted 3 of 3 runs as Ray tasks (0 already stored)" in first.stdout
    assert verdict_values(ray_reports) == verdict_values(local)
    assert len(verdict_values(local)) == 30
    runs = {run["run_id"] for run in report(ray_reports)["runs"]}
    assert len(runs) == 3              # the dense digits run (baseline and both States 0), refill, rsst
    for run_id in runs:                # each trained once, by one Ray worker, not by pytest itself
        pids = _task_pids(ray_reports / "runs" / run_id / "task.log")
        assert len(pids) == 1 and pids[0] != os.getpid()
    assert not any(run["reused"] for run in report(ray_reports)["runs"]
                   if run["case"] == "baseline/digits")

    second = run_pytest(ROOT / suites[0], ray_reports, str(ROOT / suites[1]), *RAY)
    _ok(second)
    assert "ray: submitted 0 of 3 runs as Ray tasks (3 already stored)" in second.stdout
    assert all(run["reused"] for run in report(ray_reports)["runs"])
    assert verdict_values(ray_reports) == verdict_values(local)
    for run_id in runs:                # no task ran again
        assert len(_task_pids(ray_reports / "runs" / run_id / "task.log")) == 1


def _wait_for(path: Path, proc, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not path.is_file():
        assert proc.poll() is None, f"the session ended before {path} appeared"
        assert time.monotonic() < deadline, f"{path} did not appear in {timeout} s"
        time.sleep(0.05)


def test_killed_worker_is_retried_and_resumes_after_the_last_stored_state(tmp_path):
    project = write_project(tmp_path / "project", {"test_small.py": SMALL_SUITE})
    local, ray_reports = tmp_path / "local", tmp_path / "ray"
    _ok(run_pytest(project, local, cwd=project))
    key = next(r["run_id"] for r in report(local)["runs"] if r["case"] == "small/refill")
    run_dir = ray_reports / "runs" / key
    proc = subprocess.Popen(pytest_command(project, ray_reports, *RAY), cwd=project,
                            env=environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        _wait_for(run_dir / "state1.json", proc)
        holder = json.loads((ray_reports / "runs" / f"{key}.lock.holder").read_text())
        before = {name: (run_dir / name).read_bytes() for name in
                  ("state0.json", "state1.json", "state1.safetensors")}
        assert not (run_dir / "record.json").exists() and holder["pid"] != proc.pid
        os.kill(holder["pid"], signal.SIGKILL)      # the Ray worker training the pruning run
        output, _ = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output[-4000:]
    record = json.loads((run_dir / "record.json").read_text())
    assert record["notes"]["resumed_after_state"] == 1     # states 0 and 1 were not trained again
    assert [s["index"] for s in record["states"]] == list(range(SMALL_STATES + 1))
    assert {name: (run_dir / name).read_bytes() for name in before} == before
    pids = _task_pids(run_dir / "task.log")
    assert pids[0] == holder["pid"] and len(pids) == 2 and pids[1] != pids[0]
    assert f"attempt 2: pid {holder['pid']} stopped" in output
    assert verdict_values(ray_reports) == verdict_values(local)


def test_a_run_failing_for_its_own_reasons_is_a_failing_verdict_not_retried(tmp_path):
    project = write_project(tmp_path / "project", {"test_failing.py": FAILING_SUITE,
                                                   "failing_model.py": FAILING_MODEL})
    reports = tmp_path / "reports"
    result = run_pytest(project, reports, *RAY, cwd=project)
    assert result.returncode == 1, result.stdout[-4000:] + result.stderr[-4000:]
    assert "the run raised RuntimeError: deliberate failure of the model factory" in result.stdout
    verdict = next(v for v in report(reports)["verdicts"] if v["id"] == "failing/broken/run")
    assert not verdict["passed"] and verdict["observed"] == 1
    tail = verdict["evidence"]["last_output_lines"]
    assert "factory: about to fail" in tail
    assert tail[-1] == "RuntimeError: deliberate failure of the model factory"
    assert (project / "attempts.txt").read_text().splitlines() == ["called"]   # one attempt
