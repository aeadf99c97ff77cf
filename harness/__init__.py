"""harness: executable expectations for deep-learning training and pruning runs.

The authoring API, importable from here (``from harness import Case, Bar, RunSpec, Recipe``):

- :class:`Case`, :class:`Bar`, :class:`CheckpointFile` (harness.suite): what a suite declares;
- :class:`RunSpec`, :class:`Recipe`, :class:`PruneSpec` (harness.spec): a run the harness trains;
- :class:`CommandSpec` (harness.command): your own training command as a run;
- :class:`Expectation`, :class:`Verdict` (harness.expect), :class:`RunRecord`,
  :class:`StateRecord`, :class:`EpochRecord` (harness.record): what a test judges and reads.

The names load on first use (module ``__getattr__``), so ``import harness`` imports no torch.
Everything else is machinery: importable from its module, not promised to stay.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_PUBLIC = {
    "Bar": "harness.suite", "Case": "harness.suite", "CheckpointFile": "harness.suite",
    "RunSpec": "harness.spec", "Recipe": "harness.spec", "PruneSpec": "harness.spec",
    "CommandSpec": "harness.command",
    "Expectation": "harness.expect", "Verdict": "harness.expect",
    "RunRecord": "harness.record", "StateRecord": "harness.record", "EpochRecord": "harness.record",
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(_PUBLIC))
