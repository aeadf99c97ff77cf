"""Judging what a pruning run really did, from its artifacts: its saved states, its log, its init
file (the research group's save folder, or a run of the harness's own store).

``open_folder(DIR, log=..., model=..., dataset=...)`` opens a run; ``judgement_of(record)``
finds it (or opens an engine run) again; ``run.outcomes(check)`` gives, per stored state, a
:class:`Finding` (observed value, the bar the run's own claims set, evidence) or a
:class:`NotJudged` (why not). Checks: :data:`CHECKS`.
"""
from harness.runfolder.findings import CHECKS, Finding, NotJudged
from harness.runfolder.layout import RunFolderError
from harness.runfolder.opener import judgement_of, open_folder
from harness.runfolder.run import PrunedRun

__all__ = ["CHECKS", "Finding", "NotJudged", "PrunedRun", "RunFolderError", "judgement_of",
           "open_folder"]
