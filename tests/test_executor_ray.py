"""The Ray executor end to end: real pytest sessions whose runs train as Ray tasks on a local Ray
(2 CPUs here), compared with the local executor; a Ray worker killed mid-run; a run failing for
its own reasons; a worker node that cannot write the runs store."""
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from harness.executors.cluster import MAX_RETRIES
from tests.executor_support import (DYING_MODEL, FAILING_MODEL, FAILING_SUITE, ROOT, SMALL_STATES,
                                    SMALL_SUITE, environment, pytest_command, report, run_pytest,
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
    assert len(verdict_values(local)) == 57       # 30 from the baseline and pruning bars, 27 from the run checks
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
    compare = run_pytest(ROOT / suites[1], ray_reports, "-k", "refill_vs_rsst", *RAY)
    _ok(compare)                       # a test without the case fixture: its module's runs
    assert "ray: submitted 0 of 2 runs as Ray tasks (2 already stored)" in compare.stdout


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


def _failing_session(tmp_path: Path, module: str, source: str):
    """A session on Ray whose one run builds its model from ``source``; it must end failed (1)."""
    project = write_project(tmp_path / "project", {
        "test_failing.py": FAILING_SUITE.replace("MODULE", module), f"{module}.py": source})
    reports = tmp_path / "reports"
    result = run_pytest(project, reports, *RAY, cwd=project)
    assert result.returncode == 1, result.stdout[-4000:] + result.stderr[-4000:]
    return project, reports, result


def test_a_run_failing_for_its_own_reasons_is_a_failing_verdict_not_retried(tmp_path):
    project, reports, result = _failing_session(tmp_path, "failing_model", FAILING_MODEL)
    raised = ("model 'failing_model:factory' raised RuntimeError: deliberate failure of the model "
              "factory (at failing_model.py:10)")          # one line naming the path (issue 22)
    assert raised in result.stdout
    verdict = next(v for v in report(reports)["verdicts"] if v["id"] == "failing/broken/run")
    assert not verdict["passed"] and verdict["observed"] == 1
    tail = verdict["evidence"]["last_output_lines"]
    assert "factory: about to fail" in tail
    assert tail[-1] == f"ModelError: {raised}"
    assert (project / "attempts.txt").read_text().splitlines() == ["called"]   # one attempt


def test_a_worker_that_dies_every_time_is_retried_a_bounded_number_of_times(tmp_path):
    project, reports, _ = _failing_session(tmp_path, "dying_model", DYING_MODEL)
    attempts = (project / "attempts.txt").read_text().splitlines()
    assert len(attempts) == MAX_RETRIES + 1 and len(set(attempts)) == MAX_RETRIES + 1
    verdict = next(v for v in report(reports)["verdicts"] if v["id"] == "failing/broken/run")
    assert not verdict["passed"]
    assert f"died {MAX_RETRIES + 1} times (Ray retries a task at most {MAX_RETRIES} times)" \
        in verdict["evidence"]["note"]
    tail = verdict["evidence"]["last_output_lines"]
    assert tail[-1] == "factory: the process dies now"        # the last attempt's own output
    assert sum(line.startswith("--- harness ray task:") for line in tail) >= 1


def _read_only_view_works(folder: Path) -> str:
    """'' when this machine lets a process see ``folder`` read-only in its own mount namespace,
    else why not."""
    command = f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} {folder}"
    try:
        done = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", command],
                              capture_output=True, text=True, timeout=30)
    except OSError as exc:
        return str(exc)
    return "" if done.returncode == 0 else done.stderr.strip() or f"exit {done.returncode}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _nodes_up(ray_cli: Path, address: str, env: dict) -> int:
    status = subprocess.run([str(ray_cli), "status", "--address", address], env=env,
                            capture_output=True, text=True, timeout=600)   # a hang guard only
    return sum(1 for line in status.stdout.splitlines() if line.strip().startswith("1 node_"))


@contextlib.contextmanager
def _cluster(store: Path, env: dict):
    """A head node (no CPUs) and a worker node (1 CPU) that sees ``store`` read-only: two Ray
    nodes on this machine, each a process group of ours, killed at the end."""
    ray_cli = Path(sys.executable).with_name("ray")
    port, temp = _free_port(), Path(tempfile.mkdtemp(prefix="/tmp/hr"))   # short: socket paths
    address = f"127.0.0.1:{port}"
    common = ["--disable-usage-stats", "--block"]
    worker_start = (f"mount --bind {store} {store} && mount -o remount,bind,ro {store} {store} && "
                    f"exec {ray_cli} start --address={address} --num-cpus=1 {' '.join(common)}")
    groups = []
    try:
        groups.append(subprocess.Popen(
            [str(ray_cli), "start", "--head", "--num-cpus=0", f"--port={port}", f"--temp-dir={temp}",
             "--include-dashboard=false", *common], env=env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 900    # a hang guard only: Ray starts slowly on a loaded machine
        while _nodes_up(ray_cli, address, env) < 1:
            assert time.monotonic() < deadline, "the Ray head did not start in 900 s"
            time.sleep(1)
        groups.append(subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", worker_start], env=env,
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        while _nodes_up(ray_cli, address, env) < 2:
            assert time.monotonic() < deadline, "the Ray worker node did not join in 900 s"
            time.sleep(1)
        yield address
    finally:
        for group in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group.pid, signal.SIGKILL)
            group.wait(timeout=60)
        shutil.rmtree(temp, ignore_errors=True)


def test_a_store_a_worker_node_cannot_write_refuses_the_session_in_one_line(tmp_path):
    reports = tmp_path / "reports"
    store = reports / "runs"
    store.mkdir(parents=True)
    why = _read_only_view_works(store)
    if why:
        pytest.skip(f"needs `unshare -m` and bind mounts (root or CAP_SYS_ADMIN) to give a Ray "
                    f"node a read-only view of the store: {why}")
    project = write_project(tmp_path / "project", {"test_small.py": SMALL_SUITE})
    env = environment(RAY_AUTH_MODE="disabled")       # a private test cluster, no token to share
    with _cluster(store, env) as address:
        result = run_pytest(project, reports, *RAY, "--harness-ray-address", address,
                            cwd=project, env=env, timeout=600)
    assert result.returncode == 4, result.stdout[-4000:] + result.stderr[-4000:]
    line = next(x for x in result.stderr.splitlines() if x.startswith("ERROR: "))
    assert line.startswith(f"ERROR: --harness-executor ray: the runs store {store} cannot be "
                           f"written there (Read-only file system) on Ray node ")
    assert line.endswith("put --harness-reports-dir on a filesystem every node mounts at the "
                         "same path, writable by the user Ray runs as")
    assert "Traceback" not in result.stderr + result.stdout
    assert list(store.iterdir()) == []                  # nothing was submitted, nothing trained
