"""The executor seam without a cluster: options, the registry, the plan of jobs (a pruning run
after the dense run whose State 0 it shares), the Ray task's own code run in this process, the
store check a worker runs, and the progress lines read from a real runs store."""
import socket
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import torch

from harness.command import CommandSpec
from harness.executors import EXECUTORS, make_executor
from harness.executors.cluster import RayExecutor
from harness.executors.task import Job, probe_store, run_task, tail, task_log
from harness.executors.watch import Watch
from harness.lock import exclusive
from harness.options import OptionError, Options, resolve
from harness.runs import RunContext, run_key, shared_dense_spec
from harness.store import RunStore
from suites.profiles import BASELINE_CASES, PRUNING_CASES
from tests.executor_support import ROOT

SMOKE_PRUNING = [c for c in PRUNING_CASES if c.profiles == ("smoke",)]
SMOKE_BASELINE = next(c for c in BASELINE_CASES if c.profiles == ("smoke",))
CPU = torch.device("cpu")


def _context(tmp_path) -> RunContext:
    return RunContext(device=CPU, reports_dir=tmp_path, progress=False)


# --- options ---------------------------------------------------------------------------------
def test_the_executor_is_local_unless_asked():
    assert Options().executor == "local" and Options().ray_address is None
    assert make_executor(Options(), ROOT).name == "local"
    assert make_executor(Options(executor="ray"), ROOT).name == "ray"   # Ray starts on first run
    assert set(EXECUTORS) == {"local", "ray"}


def test_an_unknown_executor_from_the_ini_file_is_one_line():
    with pytest.raises(OptionError, match=r"^harness_executor = 'dask': use one of local, ray$"):
        resolve(Options(executor="dask"), cuda_available=False)


def test_a_ray_address_without_the_ray_executor_is_refused():
    with pytest.raises(OptionError, match=r"--harness-ray-address 'auto' is used only with "
                                          r"--harness-executor ray"):
        resolve(Options(ray_address="auto"), cuda_available=False)


def test_the_ray_executor_without_ray_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)       # what Python does for a missing package
    with pytest.raises(OptionError, match=r"needs Ray, which cannot be imported here .*"
                                          r"pip install -e '\.\[ray\]'"):
        resolve(Options(executor="ray"), cuda_available=False)


def test_xdist_and_the_ray_executor_are_not_combined(tmp_path):
    pytest.importorskip("xdist", reason="pytest-xdist is a dev extra")
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2",
                             "suites/baseline", "--harness-executor", "ray",
                             "--harness-reports-dir", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 4, result.stdout + result.stderr
    assert ("--harness-executor ray spreads the runs over Ray's workers itself; drop -n"
            in result.stderr)
    assert "Traceback" not in result.stderr


# --- the plan --------------------------------------------------------------------------------
def test_a_pruning_run_shares_the_dense_run_of_its_spec_unless_it_rewinds_to_an_epoch():
    refill = SMOKE_PRUNING[0].spec
    assert shared_dense_spec(refill) == replace(refill, prune=None)
    assert shared_dense_spec(replace(refill, prune=replace(refill.prune, rewind="init"))) is not None
    assert shared_dense_spec(replace(refill, prune=replace(refill.prune, rewind="epoch:2"))) is None
    assert shared_dense_spec(SMOKE_BASELINE.spec) is None


def test_the_plan_trains_the_shared_dense_run_once_before_the_pruning_runs(tmp_path):
    context = _context(tmp_path)
    dense_key = run_key(SMOKE_BASELINE.spec, CPU)
    wanted = {run_key(c.spec, CPU): c.spec for c in SMOKE_PRUNING}
    plan = RayExecutor(None, ROOT).plan(wanted, context)
    assert [job.key for job in plan] == [dense_key, *wanted]     # the dense run is needed too
    assert [job.after for job in plan] == ["", dense_key, dense_key]
    assert [job.states for job in plan] == [1, 4, 4]
    with_baseline = {dense_key: SMOKE_BASELINE.spec, **wanted}
    plan = RayExecutor(None, ROOT).plan(with_baseline, context)
    assert [job.key for job in plan] == [dense_key, *wanted]
    assert plan[0].label == "smoke digits baseline"


# --- the task, run here ---------------------------------------------------------------------
def test_a_failing_command_task_returns_its_status_and_last_lines(tmp_path):
    spec = CommandSpec(argv=(sys.executable, "-c", "print('step 1'); print('oops'); raise SystemExit(3)"),
                       label="failing command")
    job = Job("cmd-test", spec, spec.label)
    outcome = run_task(job, _context(tmp_path / "reports"), str(tmp_path))
    failed = outcome["failed"]
    assert failed["kind"] == "command" and failed["status"] == 3
    assert failed["tail"] == ["step 1", "oops"] and "exited with status 3" in failed["message"]
    log = task_log(tmp_path / "reports" / "runs", "cmd-test").read_text()
    assert log.startswith("--- harness ray task: run cmd-test (failing command) in pid ")


def test_a_task_whose_spec_cannot_run_says_why_in_its_tail(tmp_path):
    spec = replace(SMOKE_BASELINE.spec, model="no_such_model_here")
    outcome = run_task(Job("bad", spec, "bad model"), _context(tmp_path), str(tmp_path))
    failed = outcome["failed"]
    assert failed["kind"] == "run" and "unknown model 'no_such_model_here'" in failed["message"]
    assert failed["tail"][-1].startswith("ModelError: unknown model 'no_such_model_here'")


def test_the_task_log_tail_is_read_from_its_end(tmp_path):
    log = tmp_path / "task.log"
    log.write_text("".join(f"line {i}\n" for i in range(200_000)))     # ~2.4 MB
    assert tail(log) == [f"line {i}" for i in range(199_980, 200_000)]
    end = len("".join(f"line {i}\n" for i in range(10)))
    assert tail(log, 3, end) == ["line 7", "line 8", "line 9"]
    assert tail(tmp_path / "missing.log") == []


def test_the_store_check_a_worker_runs(tmp_path):
    (tmp_path / ".check").write_text("token-1")
    assert probe_store(str(tmp_path), ".check", "token-1") is None
    assert list(tmp_path.iterdir()) == [tmp_path / ".check"]         # its write probe is gone
    assert "another session's check file" in probe_store(str(tmp_path), ".check", "token-2")
    missing = probe_store(str(tmp_path / "elsewhere"), ".check", "token-1")
    assert missing.startswith("is not the same folder there") and "No such file" in missing


# --- progress lines ----------------------------------------------------------------------------
def test_one_line_per_change_of_a_running_task(tmp_path):
    store, lines = RunStore(tmp_path), []
    job = Job("k1", SMOKE_BASELINE.spec, "digits \x1b[2J run", 4)
    watch = Watch(store, lines.append)
    watch.poll([job])
    assert lines == []                                  # not started: nothing to say
    (tmp_path / "k1").mkdir()
    with exclusive(store.lock_path("k1"), "run k1"):
        watch.poll([job])
        (tmp_path / "k1" / "state0.json").write_text("{}")
        watch.poll([job])
        watch.poll([job])                               # nothing changed
    assert len(lines) == 2
    assert lines[0].startswith(r"ray: digits \x1b[2J run [run k1] running in pid ")
    assert "0/4 states stored" in lines[0] and "1/4 states stored" in lines[1]
    assert all("\x1b" not in line for line in lines)
    note = store.lock_path("k1").with_name("k1.lock.holder")
    note.write_text('{"pid": 999999, "host": "other", "since": %f}' % time.time())
    watch.poll([job])                                   # a retry on another worker
    assert "running in pid 999999 on other (attempt 2: pid " in lines[-1]


def test_a_ray_address_nobody_answers_is_one_line_at_once():
    from harness.executors import ExecutorError
    from harness.executors.cluster import check_address

    with socket.socket() as sock:               # a port that was free a moment ago
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(ExecutorError, match=rf"^--harness-ray-address 127\.0\.0\.1:{port}: nothing "
                                            rf"answers there \(Connection refused\); start the head"):
        check_address(f"127.0.0.1:{port}")
    assert time.monotonic() - started < 30
    with pytest.raises(ExecutorError, match=r"'nonsense': expected auto or the head's HOST:PORT"):
        check_address("nonsense")
    check_address("auto")                        # Ray itself finds (or refuses) the local cluster


@pytest.mark.slow
def test_a_stored_dense_run_is_not_planned_again(tmp_path, one_thread):
    from harness.runs import get_or_run
    from tests.executor_support import SMALL_CASES, SMALL_DENSE

    context = _context(tmp_path)
    get_or_run(SMALL_DENSE, context)                  # a real short run, stored
    refill = SMALL_CASES[0].spec
    key, dense_key = run_key(refill, CPU), run_key(SMALL_DENSE, CPU)
    plan = RayExecutor(None, ROOT).plan({key: refill}, context)
    assert [(job.key, job.after) for job in plan] == [(key, dense_key)]
