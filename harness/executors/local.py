"""The local executor: each run trains in this process when a test first reads it."""
from __future__ import annotations

from pathlib import Path

from harness.command import CommandSpec, get_or_run_command
from harness.executors import Executor
from harness.runs import get_or_run


class LocalExecutor(Executor):
    """Today's behaviour: the stored run, or the run trained here and now."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def result(self, case, context):
        if isinstance(case.spec, CommandSpec):
            return get_or_run_command(case.spec, context, self.root)
        return get_or_run(case.spec, context)
