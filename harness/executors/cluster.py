"""The Ray executor: the session's runs as Ray tasks on a local Ray or a cluster.

At the end of collection the session hands over every case its tests need. Each run is keyed
as the store keys it; a run already stored is read, not submitted (with ``--harness-rerun`` its
stored files are cleared first, here, under its lock). The others are submitted at once, each a
task of :func:`harness.executors.task.run_task` (``num_gpus=1`` on CUDA, ``num_cpus`` from
``--harness-threads`` on the CPU). A pruning run that shares its State 0 with a dense run waits
for that run's task, so no two tasks train the same run. Tasks write the shared store; a test
reads a run from the store once its task is done.

A worker that dies mid-run (node loss, preemption, a kill) makes Ray retry the task, at most
``MAX_RETRIES`` times; the retry resumes after the last stored state. A run that fails for its
own reasons is not retried: it becomes :class:`~harness.executors.TaskFailed` with the task's
last output lines.
"""
from __future__ import annotations

import logging
import secrets
import socket
from dataclasses import replace
from pathlib import Path
from typing import Optional, Sequence

from harness.executors import Executor, ExecutorError, TaskFailed, run_errors
from harness.executors.task import Job, probe_store, run_task, tail, task_log
from harness.executors.watch import Watch
from harness.lock import exclusive

MAX_RETRIES = 3          # retries of a task whose worker died; a run's own failure is not retried
POLL_SECONDS = 1.0       # how often a waiting test looks at the running tasks
PROBE_TIMEOUT_S = 180.0  # for every node to answer the store check (a worker starts first)
CONNECT_TIMEOUT_S = 10.0 # for the head's port to answer


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, address: Optional[str], root: Path) -> None:
        self.address = address
        self.root = Path(root)
        self.jobs: dict[str, Job] = {}       # key -> job, every run the session needs
        self.refs: dict = {}                 # key -> ObjectRef of its task (runs not stored)
        self.cases: dict[str, str] = {}      # case id -> key
        self.started = False                 # Ray connected and the store checked
        self.owns_ray = False                # this session started Ray (and shuts it down)
        self.watch: Optional[Watch] = None

    # --- submission -------------------------------------------------------------------------
    def submit(self, cases: Sequence, context) -> None:
        keyed = [(case, key) for case in cases if (key := self._key(case.spec, context))]
        self.cases.update((case.id, key) for case, key in keyed)
        wanted = {key: case.spec for case, key in keyed if key not in self.jobs}
        if not wanted:
            return
        stored = [key for key in wanted if not context.rerun and context.store.complete(key) is not None]
        todo = self.plan({k: s for k, s in wanted.items() if k not in stored}, context, wanted)
        self.jobs.update((key, _job(key, wanted[key])) for key in stored)
        self.jobs.update((job.key, job) for job in todo)
        if todo:
            self._start(context)
            for job in todo:
                if context.rerun and job.key in wanted:
                    self._clear(job.key, context)
                self._launch(job, context)
        self._say(context, f"ray: submitted {len(todo)} of {len(todo) + len(stored)} runs as Ray "
                           f"tasks ({len(stored)} already stored)")

    def _key(self, spec, context) -> Optional[str]:
        """The store key of ``spec``; None when it cannot be made (the test then gets the same
        error the local executor gives)."""
        from harness.command import CommandSpec, command_key
        from harness.runs import run_key

        try:
            if isinstance(spec, CommandSpec):
                return command_key(spec, self.root)[0]
            return run_key(spec, context.device, context.root)
        except (OSError, ImportError, ValueError, *run_errors()):
            return None

    def plan(self, needed: dict, context, cases: Optional[dict] = None) -> list[Job]:
        """Jobs for the runs of ``needed`` (key -> spec) that must train, each after the dense run
        whose State 0 it shares; that run is a job too, first, unless it is stored, already
        submitted, or a case of ``cases`` (the session's runs) found stored."""
        from harness.runs import shared_dense_spec
        from harness.spec import RunSpec

        cases = needed if cases is None else cases
        plan: dict[str, Job] = {}
        for key, spec in needed.items():
            dense = shared_dense_spec(spec) if isinstance(spec, RunSpec) else None
            after = self._key(dense, context) if dense is not None else None
            if after and after not in self.jobs and (after in needed or (
                    after not in cases and context.store.complete(after) is None)):
                plan.setdefault(after, _job(after, needed.get(after, dense)))
            plan.setdefault(key, _job(key, spec, after or ""))
        return list(plan.values())

    def _clear(self, key: str, context) -> None:
        store = context.store
        with exclusive(store.lock_path(key), f"run {key} (cleared for --harness-rerun)"):
            store.clear(key)

    def _launch(self, job: Job, context) -> None:
        import ray
        import torch

        cuda = context.device.type == "cuda"
        # what reaches a worker is pickled: no terminal (echo, progress_out hold pytest's config)
        task = replace(context, reports_dir=Path(context.reports_dir).resolve(), echo=None,
                       progress_out=None, progress=False, rerun=False,
                       device=torch.device("cuda" if cuda else "cpu"))
        after = [self.refs[job.after]] if job.after in self.refs else []
        remote = ray.remote(run_task).options(
            name=f"harness run {job.key}", num_gpus=1 if cuda else 0,
            num_cpus=1 if cuda else context.threads, max_retries=MAX_RETRIES,
            retry_exceptions=False)
        self.refs[job.key] = remote.remote(job, task, str(self.root.resolve()), *after)

    # --- Ray and the store ------------------------------------------------------------------
    def _start(self, context) -> None:
        if self.started:
            return
        import ray

        if not ray.is_initialized():
            self._connect(ray)
        check_store(Path(context.reports_dir).resolve() / "runs")
        self.watch = Watch(context.store, context.echo)
        self.started = True

    def _connect(self, ray) -> None:
        kwargs = {"log_to_driver": False, "logging_level": logging.WARNING}
        if self.address is None:
            kwargs.update(address="local", include_dashboard=False)
        else:
            check_address(self.address)
            kwargs["address"] = self.address
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError, ray.exceptions.RayError) as exc:
            where = f"the Ray cluster at {self.address}" if self.address else "a local Ray"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExecutorError(f"--harness-executor ray: cannot start or join {where} ({first}); "
                                f"start a cluster with `ray start --head` and pass "
                                f"--harness-ray-address auto, or leave the address out") from None
        self.owns_ray = True

    # --- results ----------------------------------------------------------------------------
    def result(self, case, context):
        key = self.cases.get(case.id)
        if key is None:
            self.submit([case], context)
            key = self.cases.get(case.id)
        if key is None:                  # no key: the spec itself is wrong; say so as locally
            from harness.executors.local import LocalExecutor
            return LocalExecutor(self.root).result(case, context)
        job, ref = self.jobs[key], self.refs.get(key)
        if ref is None:
            from harness.runs import stored_run

            record = stored_run(context.store, key, rerun=False)
            if record is not None:
                return record
            self._start(context)         # stored when submitted, gone since: train it now
            self._launch(job, context)
            ref = self.refs[key]
        return self._collect(job, ref, context)

    def _collect(self, job: Job, ref, context):
        import ray

        while not ray.wait([ref], timeout=POLL_SECONDS)[0]:
            self.watch.poll(self.jobs[k] for k in self.refs)
        try:
            outcome = ray.get(ref)
        except ray.exceptions.RayError as exc:
            raise TaskFailed(_crash(job, exc), 1, tail(task_log(context.store.root, job.key))) from None
        failed = outcome.get("failed")
        if failed:
            self.watch.say(job, f"failed: {failed['message']}")
            raise TaskFailed(failed["message"], failed["status"], failed["tail"],
                             user_error=failed["kind"] == "run")
        record = context.store.complete(outcome["run_id"])
        if record is None:
            raise TaskFailed(f"its Ray task stored run {outcome['run_id']}, but this machine does "
                             f"not find it complete in {context.store.root}: the runs store must "
                             f"be a folder every node sees (--harness-reports-dir)", 1, [])
        record.notes["reused"] = outcome["reused"]
        self.watch.say(job, "reused the stored run" if outcome["reused"]
                       else f"done: {len(record.states)} states stored")
        return record

    def close(self) -> None:
        if self.owns_ray:
            import ray

            ray.shutdown()
            self.owns_ray = False

    def _say(self, context, text: str) -> None:
        if context.echo is not None:
            context.echo(text)


def check_address(address: str) -> None:
    """A HOST:PORT that nothing answers is one line now (Ray itself would retry for minutes)."""
    if address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ExecutorError(f"--harness-ray-address {address!r}: expected auto or the head's "
                            f"HOST:PORT (e.g. 10.0.0.5:6379, the port `ray start --head` printed)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ExecutorError(f"--harness-ray-address {address}: nothing answers there "
                            f"({exc.strerror or exc}); start the head with `ray start --head "
                            f"--port {port}` on {host}, or pass the address it printed") from None


def _job(key: str, spec, after: str = "") -> Job:
    from harness.spec import RunSpec

    label = spec.label or spec.model
    if not isinstance(spec, RunSpec):
        return Job(key, spec, label, 0, after)
    return Job(key, spec, label, 1 + (spec.prune.states if spec.prune is not None else 0), after)


def _reason(exc) -> str:
    """The informative line of a Ray error: its cause's last line (``ModuleNotFoundError: ...``)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:300]


def _crash(job: Job, exc) -> str:
    import ray

    first = f" (or that of run {job.after}, whose State 0 it starts from)" if job.after else ""
    if isinstance(exc, (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError)):
        return (f"the Ray worker running run {job.key}{first} died {MAX_RETRIES + 1} times (Ray "
                f"retries a task at most {MAX_RETRIES} times): {_reason(exc)}")
    return f"the Ray task of run {job.key}{first} failed: {type(exc).__name__}: {_reason(exc)}"


def check_store(root: Path) -> None:
    """Refuse (one line) unless every alive Ray node sees ``root`` as this machine's folder and
    can write it: the driver writes a check file, a task pinned to each node reads it back."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from harness import storage

    root.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    marker = root / f".ray-store-check-{token[:12]}"
    storage.write_text(marker, token)
    try:
        probe = ray.remote(probe_store)
        refs = {_node(n): probe.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(
                n["NodeID"], soft=False)).remote(str(root), marker.name, token)
                for n in ray.nodes() if n.get("Alive")}
        ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=PROBE_TIMEOUT_S)
        answers = {node: _answer(ray, ref, ready) for node, ref in refs.items()}
    finally:
        marker.unlink(missing_ok=True)
    for address, (problem, broken) in answers.items():
        if broken:
            raise ExecutorError(f"--harness-executor ray: the Ray worker on node {address} cannot "
                                f"run the harness's tasks ({broken}); install this harness (and "
                                f"the project's own modules) in the same environment on every node")
        _refuse_store(root, address, problem)


def _node(node: dict) -> str:
    """A node in words: its address and the start of its id (one machine may run several)."""
    return f"{node.get('NodeManagerAddress', '?')} (id {str(node.get('NodeID', ''))[:8]})"


def _answer(ray, ref, ready: list) -> tuple:
    """(what is wrong with the store there, why the task could not run there)."""
    if ref not in ready:
        return f"was not checked: no answer in {PROBE_TIMEOUT_S:g} s", None
    try:
        return ray.get(ref), None
    except ray.exceptions.RayError as exc:
        return None, _reason(exc)


def _refuse_store(root: Path, address: str, problem: Optional[str]) -> None:
    if problem:
        raise ExecutorError(f"--harness-executor ray: the runs store {root} {problem} on Ray node "
                            f"{address}; put --harness-reports-dir on a filesystem every node "
                            f"mounts at the same path, writable by the user Ray runs as")
