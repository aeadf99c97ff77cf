"""The harness session: validated options, the chosen profile, runs and collected verdicts.

The pytest plugin builds one :class:`HarnessSession` per pytest session and only wires hooks to
it. Every user mistake found here is an :class:`OptionError` whose one line says what to change.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Optional

import torch

from harness.expect import ExpectationError, Override, Verdict, parse_override
from harness.profiles import PROFILES, Case, Profile
from harness.record import EpochRecord, RunRecord
from harness.runs import RunContext, get_or_run


class OptionError(ValueError):
    """A command-line option the harness cannot honour; the message says what to change."""


@dataclass(frozen=True)
class Options:
    profile: str = "auto"
    device: Optional[str] = None
    data_root: Optional[Path] = None
    init: Optional[str] = None
    reports_dir: Path = Path("reports")
    rerun: bool = False
    download: bool = False
    expect: tuple = ()
    progress: bool = True
    threads: int = 1
    from_log: Optional[Path] = None      # judge this training log instead of training
    log_format: Optional[str] = None     # its format (default: detected)
    dataset: Optional[str] = None        # the log's dataset when it does not print one
    compile: bool = True
    checkpoints: tuple = ()     # --checkpoints PATH...: files judged by suites/checkpoints


@dataclass
class Resolved:
    profile: Profile
    device: torch.device
    overrides: tuple
    log_record: Optional[RunRecord] = None
    checkpoints: tuple = ()     # tuple[CheckpointCase], files expanded from --checkpoints


def resolve(options: Options, cuda_available: Optional[bool] = None) -> Resolved:
    """Validate options once, at the edge; raise OptionError naming the option to change."""
    if options.from_log is not None:
        return _resolve_log(options)
    cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    name = options.profile
    if name == "auto":
        name = "nightly" if cuda else "smoke"
    if name not in PROFILES:
        raise OptionError(f"--profile {options.profile!r} is unknown; use one of auto, {', '.join(PROFILES)}")
    profile = PROFILES[name]
    device = _device(options.device, cuda)
    if profile.needs_cuda and device.type != "cuda":
        why = ("no CUDA GPU is visible (torch.cuda.is_available() is False)" if not cuda
               else f"--device {options.device} is not a CUDA device")
        raise OptionError(f"--profile {name} needs a CUDA GPU but {why}; run it on a GPU runner, "
                          f"or use --profile smoke on this machine")
    _check_data_root(profile, options)
    _check_init(profile, options.init)
    if not isinstance(options.threads, int) or options.threads < 1:
        raise OptionError(f"--threads must be a whole number >= 1, got {options.threads!r}")
    overrides = tuple(_override(text, profile) for text in options.expect)
    return Resolved(profile.with_init(_init_path(options.init)).with_overrides(overrides), device,
                    overrides, checkpoints=resolve_checkpoints(options.checkpoints, options.init))


def _device(text: Optional[str], cuda: bool) -> torch.device:
    if text is None:
        return torch.device("cuda" if cuda else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise OptionError(f"--device {text!r} is not a torch device; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not cuda:
        raise OptionError(f"--device {text} asks for CUDA but no CUDA GPU is visible; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise OptionError(f"--device {text!r}: the harness runs on cpu or cuda, got {device.type!r}")
    return device


def _check_data_root(profile: Profile, options: Options) -> None:
    from harness.data.cifar import check_root

    if profile.needs_data_root and options.data_root is None:
        raise OptionError(f"--profile {profile.name} trains on {', '.join(profile.datasets)}: pass "
                          f"--data-root DIR (the folder holding cifar-10-batches-py/ and "
                          f"cifar-100-python/), and --download to fetch them there")
    if options.data_root is None:
        return
    if not options.download:
        for name in profile.datasets:
            problem = check_root(name, options.data_root)
            if problem:
                raise OptionError(problem)


def _check_init(profile: Profile, init: Optional[str]) -> None:
    if init is None:
        if profile.needs_init:
            raise OptionError(f"--profile {profile.name} fine-tunes from a pretrained init: pass "
                              f"--init FILE (a .pth/.pth.tar/.safetensors file) or --init timm:NAME")
        return
    if init.startswith("timm:"):
        if len(init) == 5:
            raise OptionError("--init timm:NAME needs a timm model name after 'timm:'")
        return
    if not Path(init).is_file():
        raise OptionError(f"--init {init!r}: no such file; pass a checkpoint file or timm:NAME")


@dataclass(frozen=True)
class CheckpointCase:
    """One file judged by suites/checkpoints; ``claim`` is a claim made from outside the file
    (being a run's --init); demonstration cases name their builder instead of a path."""

    name: str
    path: Optional[str] = None
    claim: Optional[str] = None
    demo: Optional[str] = None

    @property
    def id(self) -> str:
        return self.name


def resolve_checkpoints(paths: tuple, init: Optional[str] = None) -> tuple:
    """--checkpoints files (folders searched recursively) plus the --init file, as cases."""
    from harness.forensics.inspection import find_checkpoints

    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise OptionError(f"--checkpoints: no such file or folder: {', '.join(missing)}; "
                          f"pass checkpoint files or folders holding them")
    files = find_checkpoints(paths)
    if paths and not files:
        raise OptionError(f"--checkpoints {' '.join(map(str, paths))}: no checkpoint files "
                          f"(.safetensors, .pth, .pth.tar, .pt, .bin, .ckpt) there")
    cases = [CheckpointCase(str(f), str(f)) for f in files]
    if init and not init.startswith("timm:"):
        cases.append(CheckpointCase(f"--init {init}", str(Path(init)), claim="the --init of a run"))
    return tuple(cases)


def _init_path(init: Optional[str]) -> Optional[str]:
    if init is None or init.startswith("timm:"):
        return init
    return str(Path(init).resolve())


def _resolve_log(options: Options) -> Resolved:
    """--from-log: the parsed log is the run of every (unpruned) case on its dataset; judging it needs no
    CUDA, no data root and no init file (an --init here is the pretrained claim, not a file)."""
    from harness.logs import LogError, parse_log
    from harness.logs.arguments import NUM_CLASSES, dataset_name

    try:
        record = parse_log(options.from_log, options.log_format, option="--from-log-format")
    except LogError as exc:
        raise OptionError(f"--from-log {exc}") from None
    dataset = dataset_name(options.dataset) or record.dataset
    if not dataset:
        raise OptionError(f"--from-log {options.from_log}: the log names no dataset; pass --dataset "
                          f"({', '.join(NUM_CLASSES)})")
    notes = dict(record.notes, dataset_from="--dataset" if options.dataset else "log",
                 pretrained_claim_from="--init" if options.init else "log")
    record = replace(record, dataset=dataset, notes=notes,
                     num_classes=record.num_classes if dataset == record.dataset else NUM_CLASSES.get(dataset, 0),
                     init=options.init or record.init,
                     claims_pretrained=bool(options.init) or record.claims_pretrained)
    profile = _log_profile(options, dataset)
    claim = record.init if record.claims_pretrained else None
    label = f"log {options.from_log}"
    cases = tuple(replace(c, spec=replace(c.spec, init=claim, label=label))
                  for c in profile.cases if c.spec.dataset == dataset and c.spec.prune is None)
    profile = replace(profile, cases=cases)
    overrides = tuple(_override(text, profile) for text in options.expect)
    return Resolved(profile.with_overrides(overrides), torch.device("cpu"), overrides,
                    log_record=record)


def _log_profile(options: Options, dataset: str) -> Profile:
    """The profile whose bars cover the log's dataset (auto: the first one that has them)."""
    fitting = [p for p in PROFILES.values() if dataset in p.datasets]
    if options.profile == "auto" and fitting:
        return fitting[0]
    if options.profile in PROFILES and PROFILES[options.profile] in fitting:
        return PROFILES[options.profile]
    known = sorted({d for p in PROFILES.values() for d in p.datasets})
    where = "no profile has" if options.profile == "auto" else f"--profile {options.profile} has no"
    raise OptionError(f"--from-log {options.from_log}: {where} bars for dataset {dataset!r}; "
                      f"pass --dataset with one of {', '.join(known)}"
                      + ("" if options.profile == "auto" else " or another --profile"))


def _override(text: str, profile: Profile) -> Override:
    try:
        override = parse_override(text)
    except ExpectationError as exc:
        raise OptionError(str(exc)) from None
    if override.id not in profile.bars:
        known = ", ".join(sorted(profile.bars))
        raise OptionError(f"--expect {text!r}: no verdict id {override.id!r} in profile "
                          f"{profile.name}; known ids: {known}")
    return override


RUN_PROPERTY = "harness-run:"  # user property naming a run a test used: (prefix + case id, run id)


class HarnessSession:
    """Runs, verdicts and timings of one pytest session."""

    def __init__(self, options: Options, resolved: Resolved) -> None:
        self.options = options
        self.profile = resolved.profile
        self.device = resolved.device
        self.overrides = resolved.overrides
        self.log_record = resolved.log_record
        self.checkpoints = resolved.checkpoints
        self.context = RunContext(device=self.device, reports_dir=Path(options.reports_dir),
                                  data_root=options.data_root, download=options.download,
                                  rerun=options.rerun, progress=options.progress,
                                  threads=options.threads, compile=options.compile)
        self.started = time.time()
        self.records: dict[str, RunRecord] = {}
        self.verdicts: dict[str, list[Verdict]] = {}
        self.tests: list[dict] = []

    def run(self, case: Case) -> RunRecord:
        if case.id not in self.records and self.log_record is not None:
            self.records[case.id] = self.log_record  # --from-log: judge the log, train nothing
        if case.id not in self.records:
            self.records[case.id] = get_or_run(case.spec, self.context)
        return self.records[case.id]

    def run_seeds(self, case: Case, seeds: int) -> list[RunRecord]:
        """One run per seed ``case.spec.seed + i`` (i < seeds), each stored and reused as any run."""
        records = []
        for offset in range(seeds):
            spec = replace(case.spec, seed=case.spec.seed + offset)
            key = case.id if offset == 0 else f"{case.id}@seed{spec.seed}"
            if key not in self.records:
                self.records[key] = get_or_run(spec, self.context)
            records.append(self.records[key])
        return records

    def recorder(self, nodeid: str) -> "VerdictRecorder":
        return VerdictRecorder(self, nodeid)

    def add(self, nodeid: str, verdict: Verdict) -> Verdict:
        self.verdicts.setdefault(nodeid, []).append(verdict)
        return verdict

    def collect_remote(self, nodeid: str, user_properties) -> None:
        """Take the verdicts and runs a test recorded in another process (an xdist worker) from
        its report's user properties: ``verdict:<id>`` (the verdict as JSON) and
        ``harness-run:<case id>`` (run id and whether the worker reused it; the record is read
        back from the runs store)."""
        import json

        for name, value in user_properties:
            if name.startswith("verdict:"):
                self.add(nodeid, Verdict.from_dict(json.loads(value)))
            elif name.startswith(RUN_PROPERTY) and name[len(RUN_PROPERTY):] not in self.records:
                run = json.loads(value)
                record = self.context.store.complete(run["run_id"])
                if record is not None:
                    record.notes["reused"] = run["reused"]
                    self.records[name[len(RUN_PROPERTY):]] = record

    def all_verdicts(self) -> list[Verdict]:
        return [v for vs in self.verdicts.values() for v in vs]


class VerdictRecorder:
    """What a test uses: evaluate bars by id; failures are collected, not raised."""

    def __init__(self, session: HarnessSession, nodeid: str) -> None:
        self.session = session
        self.nodeid = nodeid

    @property
    def profile(self) -> Profile:
        return self.session.profile

    def run(self, case: Case) -> RunRecord:
        return self.session.run(case)

    def check(self, verdict_id: str, observed: float, evidence: Mapping[str, Any] | None = None) -> Verdict:
        return self.session.add(self.nodeid, self.profile.bar(verdict_id).evaluate(observed, evidence))

    def check_accuracy(self, verdict_id: str, correct: int, n: int,
                       evidence: Mapping[str, Any] | None = None) -> Verdict:
        bar = self.profile.bar(verdict_id)
        return self.session.add(self.nodeid, bar.evaluate_accuracy(correct, n, evidence))

    def check_epoch(self, verdict_id: str, epoch: EpochRecord,
                    evidence: Mapping[str, Any] | None = None) -> Verdict:
        """An epoch's test accuracy against a bar: with its sample count and Wilson interval when
        the record has them; a log that gives no count is judged on the printed percentage."""
        if epoch.test_correct is not None and epoch.test_n:
            return self.check_accuracy(verdict_id, epoch.test_correct, epoch.test_n, evidence)
        merged = {"n": None, "interval": "none: the record gives no sample count, only the "
                                         "printed accuracy"}
        merged.update(evidence or {})
        return self.check(verdict_id, epoch.test_accuracy, merged)

    def run_seeds(self, case: Case, seeds: int) -> list[RunRecord]:
        return self.session.run_seeds(case, seeds)

    def check_accuracy_seeds(self, verdict_id: str, results, evidence: Mapping[str, Any] | None = None
                             ) -> Verdict:
        """``results``: one ``(correct, n)`` per seed; judged on their mean, spread reported."""
        bar = self.profile.bar(verdict_id)
        return self.session.add(self.nodeid, bar.evaluate_accuracy_seeds(results, evidence))

    def record(self, verdict: Verdict) -> Verdict:
        """Record a verdict made outside the profile's bars (e.g. a checkpoint's claim)."""
        return self.session.add(self.nodeid, verdict)

    @property
    def verdicts(self) -> list[Verdict]:
        return self.session.verdicts.get(self.nodeid, [])

    def failure_message(self) -> Optional[str]:
        failed = [v for v in self.verdicts if not v.passed]
        return "\n".join(v.line() for v in failed) if failed else None
