"""Which cases a collected module runs in this session, and what the session lacks before any
run starts (checked once the suites are collected, each problem one line)."""
from __future__ import annotations

from dataclasses import replace

from harness.command import CommandSpec
from harness.options import PROFILES
from harness.spec import RunSpec
from harness.suite import Case, cases_for


def module_cases(module, hs) -> list[Case]:
    """The module's ``HARNESS_CASES`` of the session's profile, as the session runs them; with
    ``--harness-from-log`` the log's run stands in for them."""
    suite = getattr(module, "SUITE", None) or module.__name__
    declared = [replace(c, suite=suite) for c in cases_for(getattr(module, "HARNESS_CASES", None),
                                                            hs.profile.name)]
    if hs.run_record is not None:
        return run_cases(declared, hs.run_record, suite)
    if hs.log_record is not None:
        return log_cases(declared, hs.log_record, str(hs.options.from_log), suite)
    return [hs.prepare(c) for c in declared]


def _pruning_log_case(declared: list, record, suite: str) -> list[Case]:
    from harness.expect import ExpectationError
    from harness.runfolder import RunFolderError
    from harness.runfolder.opener import open_log

    args = (record.spec or {}).get("args") or {}
    if "struct" not in args or not record.states:
        return []
    try:
        open_log(record)
    except RunFolderError as exc:
        raise ExpectationError(f"--harness-from-log: {exc}") from None
    return run_cases(declared, record, suite)


def run_cases(declared: list, record, suite: str) -> list[Case]:
    """The one case a pruning run folder gives a module that judges pruning runs, named by the
    run's method; a module of unpruned runs gets none."""
    from harness.prune.methods import METHODS
    from harness.runfolder import judgement_of
    from harness.spec import PruneSpec

    if not any(isinstance(c.spec, RunSpec) and c.spec.prune is not None for c in declared):
        return []
    claims = judgement_of(record).claims
    method = claims.method
    states = max(1, len(record.states) - 1)
    # a lab's own method name (declared) stands for an unstructured magnitude run in the spec
    known = method if method in METHODS else ("refill" if claims.structured else "imp")
    spec = RunSpec(model=record.model or "unknown", dataset=record.dataset or "unknown",
                   prune=PruneSpec(method=known, states=states), label=f"run {record.run_id}")
    return [Case(method, spec, suite=suite)]


def log_cases(declared: list, record, source: str, suite: str) -> list[Case]:
    """The one case a log gives a module that judges unpruned runs: named by the log's dataset,
    claiming what the log claims. A module of pruned runs gets the log's pruning run (named by
    its method) when the log is one, else none."""
    if not any(isinstance(c.spec, RunSpec) and c.spec.prune is None for c in declared):
        return _pruning_log_case(declared, record, suite)
    claim = record.init if record.claims_pretrained else None
    spec = RunSpec(model=record.model or "unknown", dataset=record.dataset, init=claim,
                   label=f"log {source}")
    return [Case(record.dataset, spec, suite=suite)]


def no_cases_reason(module, hs) -> str:
    """Why ``module`` has no case in this session, and what to pass instead (one line)."""
    suite = getattr(module, "SUITE", None) or module.__name__
    declared = getattr(module, "HARNESS_CASES", None)
    runs = [c for c in cases_for(declared, hs.profile.name) if isinstance(c.spec, RunSpec)]
    pruned = any(c.spec.prune is not None for c in runs)
    if hs.run_record is not None:
        return (f"suite {suite} judges no pruning run, and --harness-from-run {hs.options.from_run} "
                f"is one: judge it with the pruning suite (harness suites pruning "
                f"--harness-from-run DIR)")
    if hs.log_record is not None and pruned:
        return (f"--harness-from-log {hs.options.from_log} is not a pruning run's log (no pruning "
                f"arguments or states) and suite {suite} judges pruning runs: judge the log with "
                f"the baseline suite (harness suites baseline --harness-from-log PATH), or pass "
                f"the pruning run's save folder with --harness-from-run DIR")
    others = [name for name in PROFILES if cases_for(declared, name)]
    return (f"suite {suite} declares no case for profile {hs.profile.name}: pass --harness-profile "
            f"{' or '.join(others) if others else 'NAME (it declares cases for none)'}")


def log_profile(hs, modules: list) -> str:
    """``auto`` with a log: the first profile whose declared cases cover the log's dataset
    (where its bars are); the session's own profile when none does (ini bars apply to all)."""
    dataset = hs.log_record.dataset
    for name in PROFILES:
        for module in modules:
            declared = cases_for(getattr(module, "HARNESS_CASES", None), name)
            if any(isinstance(c.spec, RunSpec) and c.spec.dataset == dataset for c in declared):
                return name
    return hs.profile.name


def session_problems(hs, used_fixtures: set) -> list[str]:
    """One line per thing the session lacks, in the order a user fixes them."""
    problems = [f"--harness-expect {i!r}: no verdict id {i!r} in profile {hs.profile.name}; "
                f"known ids: {', '.join(hs.book.ids()) or 'none'}"
                for i in hs.book.unknown_overrides()]
    options = hs.options
    if options.checkpoints and "checkpoint" not in used_fixtures:
        problems.append("--harness-checkpoints: no collected test judges checkpoint files; run "
                        "the suite that does, e.g. harness suites checkpoints --harness-checkpoints "
                        "PATH")
    if options.from_log is not None and "case" not in used_fixtures:
        problems.append("--harness-from-log: no collected test judges a run; run a suite that does, e.g. "
                        "harness suites baseline --harness-from-log PATH")
    if options.from_run is not None and "case" not in used_fixtures:
        problems.append("--harness-from-run: no collected test judges a run; run the pruning "
                        "suite, e.g. harness suites pruning --harness-from-run DIR")
    if hs.log_record is None and hs.run_record is None:
        cases = [c for cs in hs.module_cases.values() for c in cs]
        problems += _case_problems(cases, options, hs.profile.name)
    return problems


def _case_problems(cases: list, options, profile: str) -> list[str]:
    from harness.data.registry import root_problem

    problems, seen = [], set()
    for case in cases:
        if case.needs_init and options.init is None:
            problems.append(f"case {case.id} (profile {profile}) fine-tunes from a pretrained "
                            f"init: pass --harness-init FILE (a .pth/.pth.tar/.safetensors file) "
                            f"or --harness-init timm:NAME")
        if isinstance(case.spec, CommandSpec) or case.spec.dataset in seen:
            continue
        seen.add(case.spec.dataset)
        problem = root_problem(case.spec.dataset, options.data_root, options.download)
        if problem:
            problems.append(f"case {case.id} (profile {profile}): {problem}")
    return problems


def spec_problems(spec, options) -> str:
    """Why ``spec`` cannot run with ``options`` (its model, its data root), or "" (for `harness
    run`, which has no suite collection to check it)."""
    from harness.data.registry import root_problem
    from harness.models import ModelError, check_model_name

    try:
        check_model_name(spec.model)
    except ModelError as exc:
        return str(exc)
    return root_problem(spec.dataset, options.data_root, options.download) or ""


def suite_file_case(text: str, profile: str) -> RunSpec:
    """The spec of ``SUITE_FILE::NAME``: the case NAME a suite file declares in HARNESS_CASES
    for ``profile`` (the file is imported as pytest would, its folder's root on sys.path)."""
    import sys
    from pathlib import Path

    from harness.options import OptionError

    file, sep, name = (text or "").partition("::")
    path = Path(file)
    if not sep or not name or not path.is_file():
        raise OptionError(f"--case {text!r}: expected SUITE_FILE::NAME with an existing suite file, "
                          f"e.g. suites/baseline/test_baseline.py::cifar10")
    sys.path.insert(0, str(Path.cwd()))
    from harness.imports import import_as_pytest

    module = import_as_pytest(path.resolve())
    cases = {c.name: c for c in cases_for(getattr(module, "HARNESS_CASES", None), profile)}
    if name not in cases or isinstance(cases[name].spec, CommandSpec):
        raise OptionError(f"--case {text!r}: {file} declares no engine case {name!r} for profile "
                          f"{profile}; known: {', '.join(sorted(cases)) or 'none'}")
    return cases[name].spec
