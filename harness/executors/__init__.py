"""Where a session's runs train: the executor seam between the session and the engine.

``HarnessSession.run(case)`` asks its executor for the case's :class:`~harness.record.RunRecord`:

- ``local`` (the default): in this process, when a test first reads the run
  (:func:`harness.runs.get_or_run`, :func:`harness.command.get_or_run_command`);
- ``ray``: every run the collected tests need is submitted up front as a Ray task
  (:mod:`harness.executors.cluster`); a test blocks only on the runs it reads.

Either way the runs store is the truth: a run already stored is read, not trained again, and the
per-run lock keeps two processes (or nodes) from training the same run.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Sequence

from harness.options import OptionError


class ExecutorError(OptionError):
    """The executor cannot run this session's runs (one line: what is wrong, what to do)."""


class TaskFailed(RuntimeError):
    """A run submitted elsewhere failed: ``status`` (exit status, 1 when it raised), ``tail`` (the
    task's last output lines); ``user_error``: the run's own input is wrong (a spec, a model, the
    data), so the session adds its hint of what to run instead."""

    def __init__(self, message: str, status: int, tail: list, user_error: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.tail = tail
        self.user_error = user_error


def run_errors() -> tuple:
    """The exceptions that mean a run cannot start for a reason in its own spec or inputs."""
    from harness.data import DataError
    from harness.imports import ImportPathError
    from harness.models import ModelError
    from harness.spec import SpecError

    return (DataError, ImportPathError, ModelError, SpecError)


class Executor:
    """Makes the runs of one session. ``submit`` hears up front of the cases the collected tests
    need; ``result`` returns a case's record (raising the engine's own errors, or
    :class:`TaskFailed`); ``close`` ends what the executor started."""

    name = ""

    def submit(self, cases: Sequence, context) -> None:
        return None

    def result(self, case, context):
        raise NotImplementedError

    def close(self) -> None:
        return None


def _local(options, root: Path) -> Executor:
    from harness.executors.local import LocalExecutor

    return LocalExecutor(root)


def _ray(options, root: Path) -> Executor:
    from harness.executors.cluster import RayExecutor

    return RayExecutor(options.ray_address, root)


EXECUTORS: dict[str, Callable[..., Executor]] = {"local": _local, "ray": _ray}


def make_executor(options, root: Path) -> Executor:
    """The executor ``options.executor`` names (validated by :func:`harness.options.resolve`)."""
    factory: Optional[Callable[..., Executor]] = EXECUTORS.get(options.executor)
    if factory is None:
        raise ExecutorError(f"--harness-executor {options.executor!r} is unknown; use one of "
                            f"{', '.join(EXECUTORS)}")
    return factory(options, Path(root))
