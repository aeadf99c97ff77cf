"""The harness session: the validated options, the bars, the runs and the collected verdicts.

The pytest plugin builds one :class:`HarnessSession` per pytest session, the first time a test
or an option needs it, and only wires hooks to it. Tests talk to it through the ``harness``
fixture, a :class:`VerdictRecorder`.
"""
from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Optional

from harness.command import CommandFailed, CommandSpec
from harness.executors import ExecutorError, TaskFailed, make_executor, run_errors
from harness.expect import Expectation, ExpectationError, Verdict
from harness.options import Options, Resolved, init_path
from harness.properties import RUN_PROPERTY, VERDICT_PROPERTY
from harness.record import EpochRecord, RunRecord
from harness.runs import RunContext
from harness.suite import BarBook, Case
from harness.wording import brief


class RunFailed(RuntimeError):
    """A case's run could not be made (its command failed, its init does not fit its model, its
    data cannot load); the message is the one line the test fails with."""

    def __init__(self, message: str, verdict: Verdict) -> None:
        super().__init__(message)
        self.verdict = verdict


class HarnessSession:
    """Runs, verdicts and timings of one pytest session."""

    def __init__(self, options: Options, resolved: Resolved, root: Optional[Path] = None) -> None:
        self.options = options
        self.profile = resolved.profile
        self.device = resolved.device
        self.overrides = resolved.overrides
        self.log_record = resolved.log_record
        self.run_record = resolved.run_record
        self.checkpoints = resolved.checkpoints
        self.log_patterns = resolved.log_patterns
        self.root = Path(root) if root is not None else Path.cwd()
        self.book = BarBook(self.profile.name, resolved.overrides, resolved.config_bars)
        from harness.watch.inline import stop_rule

        self.context = RunContext(device=self.device, reports_dir=Path(options.reports_dir),
                                  data_root=options.data_root, download=options.download,
                                  rerun=options.rerun, progress=options.progress,
                                  threads=options.threads, compile=options.compile, root=self.root,
                                  log_patterns=resolved.log_patterns, bars=self.book,
                                  stop_rule=stop_rule)
        self.started = time.time()
        self.records: dict[str, RunRecord] = {}
        self.failures: dict[str, RunFailed] = {}
        self.verdicts: dict[str, list[Verdict]] = {}
        self.tests: list[dict] = []
        self.module_cases: dict[str, list[Case]] = {}
        self.no_cases: dict[str, str] = {}      # module -> why it has no case in this session
        self.executor = make_executor(options, self.root)

    def set_profile(self, name: str) -> None:
        """Judge with another profile's bars (``--harness-from-log`` with profile auto)."""
        from harness.options import PROFILES

        self.profile = PROFILES[name]
        self.book.profile = name

    # --- cases ---------------------------------------------------------------------------
    def note_no_cases(self, module) -> None:
        """Remember why ``module`` has no case in this session (its tests are skipped)."""
        from harness.cases import no_cases_reason

        self.no_cases[module.__name__] = no_cases_reason(module, self)

    def prepare(self, case: Case) -> Case:
        """The case as this session runs it: every engine run starts from ``--harness-init``."""
        init = init_path(self.options.init)
        if init is None or isinstance(case.spec, CommandSpec):
            return case
        return replace(case, spec=replace(case.spec, init=init))

    def submit(self, cases: list[Case]) -> None:
        """Hand the executor, up front, the cases the collected tests need (the Ray executor
        submits their runs now; the local one trains each when a test first reads it)."""
        if self.log_record is None:
            self.executor.submit(cases, self.context)

    def close(self) -> None:
        self.executor.close()

    def run(self, case: Case) -> RunRecord:
        if case.id in self.failures:
            raise self.failures[case.id]
        if case.id not in self.records:
            self.records[case.id] = self._make(case)
        return self.records[case.id]

    def _make(self, case: Case) -> RunRecord:
        if self.run_record is not None:
            return self.run_record            # --harness-from-run: judge the run's files
        if self.log_record is not None:
            return self.log_record            # --harness-from-log: judge the log, train nothing
        try:
            record = self.executor.result(case, self.context)
        except CommandFailed as exc:
            raise self._failed(case, str(exc), exc.status, exc.tail) from None
        except TaskFailed as exc:
            hint = _hint(case, self.options) if exc.user_error else ""
            raise self._failed(case, f"{exc}{hint}", exc.status, exc.tail) from None
        except ExecutorError as exc:      # a run submitted during a test (e.g. another seed)
            raise self._failed(case, str(exc), 1, []) from None
        except run_errors() as exc:
            raise self._failed(case, f"{exc}{_hint(case, self.options)}", 1, []) from None
        if record.notes.get("log_unread"):
            self.records[case.id] = record        # stored and listed: the run is not made again
            raise self._unread(case, record)
        return record

    def _unread(self, case: Case, record: RunRecord) -> RunFailed:
        """A command that ran but whose log was not read: a failing verdict, never a pass."""
        notes = record.notes
        log = notes.get("log_path") or notes.get("output_log")
        message = (f"the command ran (exit status 0) but its log was not read: {notes['log_unread']}; "
                   f"declare the log's format with harness_log_patterns in the project's ini file "
                   f"(try the patterns with `harness log {log} --pattern NAME=REGEX`) or name a "
                   f"format with CommandSpec.log_format; the run is stored and is read again, not "
                   f"run again, once the format changes")
        if notes.get("output_cut") and not case.spec.log:     # its head only: run it again
            message = f"the command ran (exit status 0) but its log was not read: {notes['log_unread']}"
        bar = Expectation(f"{case.id}/log", f"Evaluations read from the log of case {case.id}",
                          ">=", 1)
        evidence = {"note": message, "error": brief(f"log not read: {notes['log_unread']}"),
                    "log": log, "last_output_lines": notes.get("last_output_lines", []),
                    "spec": case.spec.to_dict(), "run_id": record.run_id}
        failure = RunFailed(f"{case.id}: {message}", bar.evaluate(0, evidence))
        self.failures[case.id] = failure
        return failure

    def _failed(self, case: Case, message: str, status: int, tail: list) -> RunFailed:
        bar = Expectation(f"{case.id}/run", f"Run of case {case.id} (exit status)", "==", 0)
        evidence = {"note": message, "error": brief(message), "last_output_lines": tail,
                    "spec": case.spec.to_dict()}
        failure = RunFailed(f"{case.id}: {message}", bar.evaluate(status, evidence))
        self.failures[case.id] = failure
        return failure

    def run_seeds(self, case: Case, seeds: int) -> list[RunRecord]:
        """One run per seed ``case.spec.seed + i`` (i < seeds), each stored and reused as any run."""
        seeded = [case if offset == 0 else replace(
            case, name=f"{case.name}@seed{case.spec.seed + offset}",
            spec=replace(case.spec, seed=case.spec.seed + offset)) for offset in range(seeds)]
        try:
            self.submit(seeded)           # the Ray executor starts them all before we wait
        except ExecutorError as exc:
            raise self._failed(seeded[0], str(exc), 1, []) from None
        return [self.run(c) for c in seeded]

    def read_log(self, path: str | Path, fmt: Optional[str] = None) -> RunRecord:
        """A training log (or timm output folder) read into a record, relative paths from the
        project root; listed among the session's runs. The ini file's declared format
        (``harness_log_patterns``) reads it unless ``fmt`` names another."""
        from harness.logs import parse_log

        full = Path(path) if Path(path).is_absolute() else self.root / path
        key = f"log:{path}"
        if key not in self.records:
            self.records[key] = parse_log(full, fmt, option="fmt", patterns=self.log_patterns)
        return self.records[key]

    # --- verdicts -------------------------------------------------------------------------
    def recorder(self, nodeid: str, module: str = "") -> "VerdictRecorder":
        return VerdictRecorder(self, nodeid, module)

    def add(self, nodeid: str, verdict: Verdict) -> Verdict:
        self.verdicts.setdefault(nodeid, []).append(verdict)
        return verdict

    def collect_remote(self, nodeid: str, user_properties) -> None:
        """Take the verdicts and runs a test recorded in another process (an xdist worker) from
        its report's user properties: ``verdict:<id>`` (the verdict as JSON) and
        ``harness-run:<case id>`` (run id and whether the worker reused it; the record is read
        back from the runs store)."""
        for name, value in user_properties:
            if name.startswith(VERDICT_PROPERTY):
                self.add(nodeid, Verdict.from_dict(json.loads(value)))
            elif name.startswith(RUN_PROPERTY) and name[len(RUN_PROPERTY):] not in self.records:
                run = json.loads(value)
                record = self.context.store.complete(run["run_id"])
                if record is not None:
                    record.notes["reused"] = run["reused"]
                    self.records[name[len(RUN_PROPERTY):]] = record

    def all_verdicts(self) -> list[Verdict]:
        return [v for vs in self.verdicts.values() for v in vs]


def judged_nothing(outcomes: Mapping[str, str], skips: list, no_cases: Mapping[str, str]) -> str:
    """The one line of a session whose harness tests recorded no verdict: how many tests, why
    (a module without a case in this session first, else the commonest skip reason, which names
    what to pass), and that the session fails."""
    counts: dict = {}
    for outcome in outcomes.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    tally = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
    if no_cases:
        why = next(iter(no_cases.values()))
    elif skips:
        gists = [reason.partition(": ")[2] or reason for reason in skips]   # less "<check> of <case>: "
        commonest = max(set(gists), key=lambda r: (gists.count(r), r))
        why = f"{gists.count(commonest)} of them skipped: {commonest}"
    else:
        why = ("the tests ran but recorded no verdict: judge with harness.check(...) or "
               "harness.check_epoch(...) against a declared bar")
    tests = f"{len(outcomes)} test{'s' if len(outcomes) != 1 else ''}"
    return (f"harness: FAILED: the harness tests judged nothing ({tests}: {tally}; "
            f"no verdict recorded): {why}")


def _hint(case: Case, options: Options) -> str:
    """What to run instead when a run cannot start."""
    if options.init and not isinstance(case.spec, CommandSpec):
        return (f"; this profile trains {case.spec.model}: judge the init file alone with "
                f"`harness inspect {options.init}`, or pass an init made for that model (or run "
                f"the profile whose model it fits, e.g. --harness-profile nightly on a CUDA runner)")
    return ""


class VerdictRecorder:
    """What a test uses (the ``harness`` fixture): runs by case, bars by id; failing verdicts
    are collected and fail the test at its end, each as one line."""

    def __init__(self, session: HarnessSession, nodeid: str, module: str = "") -> None:
        self.session = session
        self.nodeid = nodeid
        self.module = module

    @property
    def profile(self):
        """The session's profile (``.name``, ``.description``)."""
        return self.session.profile

    def cases(self) -> list[Case]:
        """The cases the calling module runs in this session (e.g. to compare two of them)."""
        return list(self.session.module_cases.get(self.module, []))

    def run(self, case: Case) -> RunRecord:
        try:
            return self.session.run(case)
        except RunFailed as failure:
            if not any(v.id == failure.verdict.id for v in self.session.all_verdicts()):
                self.record(failure.verdict)
            raise

    def run_seeds(self, case: Case, seeds: int) -> list[RunRecord]:
        return self.session.run_seeds(case, seeds)

    def read_log(self, path: str | Path, fmt: Optional[str] = None) -> RunRecord:
        return self.session.read_log(path, fmt)

    def bar(self, verdict_id: str) -> Expectation:
        """The bar ``verdict_id`` as it applies in this profile (overrides included)."""
        return self.session.book.get(verdict_id)

    def has_bar(self, verdict_id: str) -> bool:
        return self.session.book.has(verdict_id)

    def check(self, verdict_id: str, observed: float, evidence: Mapping[str, Any] | None = None) -> Verdict:
        return self.record(self.bar(verdict_id).evaluate(observed, evidence))

    def check_accuracy(self, verdict_id: str, correct: int, n: int,
                       evidence: Mapping[str, Any] | None = None) -> Verdict:
        return self.record(self.bar(verdict_id).evaluate_accuracy(correct, n, evidence))

    def check_epoch(self, verdict_id: str, epoch: EpochRecord,
                    evidence: Mapping[str, Any] | None = None) -> Verdict:
        """An epoch's test accuracy against a bar: with its sample count and Wilson interval when
        the record has them; a log that gives no count is judged on the printed percentage.
        ``None`` (a state with no evaluated epoch, e.g. every accuracy of its log refused) is a
        failing verdict saying so."""
        if epoch is None:
            note = ("no epoch to judge: the state holds no evaluated epoch (the log printed no "
                    "test accuracy, or every one it printed was refused; the record's notes say "
                    "which)")
            return self.check(verdict_id, float("nan"), {**(evidence or {}), "note": note})
        if not isinstance(epoch, EpochRecord):
            raise ExpectationError(f"check_epoch({verdict_id!r}, ...): epoch must be an EpochRecord "
                                   f"(e.g. record.state(0).best_epoch) or None, got "
                                   f"{type(epoch).__name__}")
        if epoch.test_correct is not None and epoch.test_n:
            return self.check_accuracy(verdict_id, epoch.test_correct, epoch.test_n, evidence)
        merged = {"n": None, "interval": "none: the record gives no sample count, only the "
                                         "printed accuracy"}
        merged.update(evidence or {})
        return self.check(verdict_id, epoch.test_accuracy, merged)

    def check_seeds(self, verdict_id: str, values, evidence: Mapping[str, Any] | None = None) -> Verdict:
        """One observed value per seed, judged on their mean (spread reported)."""
        return self.record(self.bar(verdict_id).evaluate_seeds(values, evidence))

    def check_accuracy_seeds(self, verdict_id: str, results, evidence: Mapping[str, Any] | None = None
                             ) -> Verdict:
        """``results``: one ``(correct, n)`` per seed; judged on their mean, spread reported."""
        return self.record(self.bar(verdict_id).evaluate_accuracy_seeds(results, evidence))

    def record(self, verdict: Verdict) -> Verdict:
        """Record a verdict made outside the declared bars (e.g. a checkpoint's claim)."""
        return self.session.add(self.nodeid, verdict)

    @property
    def verdicts(self) -> list[Verdict]:
        return self.session.verdicts.get(self.nodeid, [])

    def failure_message(self) -> Optional[str]:
        failed = [v for v in self.verdicts if not v.passed]
        return "\n".join(v.line() for v in failed) if failed else None
