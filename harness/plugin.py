"""pytest hooks and fixtures only: options, cases and bars from the suites, verdicts, reports.

Every hook hands its work to a library object (:class:`harness.session.HarnessSession`,
:mod:`harness.report`); this module is the only one in the library that imports pytest. The
plugin is inert until used: a session that sets no harness option (command line or ini) and
collects no test using a harness fixture or declaring harness cases imports no torch and writes
nothing. The contract a suite module relies on is :mod:`harness.hookspec`.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Optional

import pytest

from harness.options import OPTIONS, OptionError, Options, read_options
from harness.properties import RUN_PROPERTY, USED_PROPERTY, VERDICT_PROPERTY

STATE_KEY = pytest.StashKey["_State"]()
HARNESS_FIXTURES = ("harness", "case", "checkpoint", "harness_session")


# --- hooks a conftest.py or plugin may implement (harness.hookspec) ------------------------
def pytest_addhooks(pluginmanager) -> None:
    from harness import hookspec

    pluginmanager.add_hookspecs(hookspec)


# --- options --------------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "harness: executable expectations for training runs")
    for spec in OPTIONS:
        if spec.cli:
            group.addoption(spec.flag, **_option_kwargs(spec))
        if spec.ini:
            parser.addini(spec.ini_key, f"harness: {spec.help}",
                          type="linelist" if spec.lines else "string")


def _option_kwargs(spec, help_text: Optional[str] = None) -> dict:
    kwargs = {"dest": spec.dest, "help": help_text or spec.help}
    if spec.action:
        kwargs["action"] = spec.action
    if spec.action != "store_true":
        kwargs["default"] = None if spec.action == "append" else spec.default
        for name in ("type", "choices"):
            if getattr(spec, name) is not None:
                kwargs[name] = getattr(spec, name)
        if spec.choices is None:
            kwargs["metavar"] = spec.metavar or spec.name.split("_")[-1].upper()
    else:
        kwargs["default"] = spec.default
    return kwargs


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args):
    """Once every plugin and root conftest has added its options, offer the short names
    (``--profile`` for ``--harness-profile``) that nobody else owns."""
    result = yield
    group = parser.getgroup("harness")
    taken = _taken_names(parser)
    for spec in OPTIONS:
        if not spec.short or not spec.cli or spec.short_flag in taken:
            continue
        try:
            group.addoption(spec.short_flag, **_option_kwargs(spec, f"short for {spec.flag}"))
        except (argparse.ArgumentError, ValueError):
            continue   # another plugin owns the name: the long name stays the way in
    return result


def _taken_names(parser: pytest.Parser) -> set:
    names: set = set()
    for group in getattr(parser, "_groups", []):
        for option in getattr(group, "options", []):
            names.update(option.names())
    optparser = getattr(parser, "optparser", None)
    names.update(getattr(optparser, "_option_string_actions", {}) or {})
    return names


def pytest_report_header(config: pytest.Config) -> Optional[list[str]]:
    state = config.stash.get(STATE_KEY, None)
    if state is None or not state.options.given:
        return None
    o = state.options
    shown = {"profile": o.profile, "device": o.device, "data root": o.data_root, "init": o.init,
             "reports": o.reports_dir, "from log": o.from_log}
    return ["harness: " + ", ".join(f"{k} {v}" for k, v in shown.items() if v is not None)]


# --- the session, built on first use --------------------------------------------------------
class _State:
    """The plugin's per-session state: the options read at startup, the harness session once
    something uses it."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.started = time.time()         # the pytest session's start: the report's duration
        try:
            self.options: Options = _read(config)
        except OptionError as exc:
            raise pytest.UsageError(str(exc)) from None
        self.session = None
        self.modules: dict = {}            # collected modules that use the harness, by name
        self.session_id = ""               # set when latest/session.json marks this session
        self.failures_shown: dict = {}     # a run failure's message -> the test that showed it

    def mark_start(self) -> None:
        """Mark ``latest/`` as this session's before anything runs (harness.report.marker), so
        that `harness gate` refuses the previous report if this session stops before its own."""
        if self.session_id or self.is_worker or self.config.option.collectonly:
            return
        from harness.report import ReportsDirError, marker
        from harness.report.folder import check_folder

        session_id = marker.new_id(self.started)
        try:
            check_folder(self.options.reports_dir)
            marker.start(self.options.reports_dir, session_id, self.started)
        except (ReportsDirError, marker.MarkerError) as exc:
            raise pytest.UsageError(str(exc)) from None
        self.session_id = session_id

    @property
    def is_worker(self) -> bool:
        return hasattr(self.config, "workerinput")

    def activate(self):
        if self.session is None:
            from harness.echo import with_echo
            from harness.options import resolve
            from harness.report import check_reports_dir
            from harness.report.history import HistoryError
            from harness.session import HarnessSession

            try:
                resolved = resolve(self.options)
                if not self.config.option.collectonly:     # --collect-only writes nothing
                    check_reports_dir(self.options.reports_dir)
            except (OptionError, HistoryError) as exc:
                raise pytest.UsageError(str(exc)) from None
            self.session = HarnessSession(self.options, resolved, Path(self.config.rootpath))
            if self.options.progress:
                self.session.context = with_echo(self.session.context, self.config)
        return self.session


def _read(config: pytest.Config) -> Options:
    ini_base = Path(config.inipath).parent if config.inipath else Path(config.rootpath)
    return read_options(config.getoption, config.getini, Path(config.invocation_params.dir),
                        ini_base)


def _state(config: pytest.Config) -> "_State":
    return config.stash[STATE_KEY]


def _activate(config: pytest.Config):
    return _state(config).activate()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (run on a GPU runner: pytest -m gpu)")
    config.addinivalue_line("markers", "slow: minutes of CPU time (deselect with -m 'not slow')")
    config.addinivalue_line("markers", "xdist_group(name): tests sharing a run go to one xdist worker")
    _refuse_borrowed_ini(config)
    state = _State(config)
    config.stash[STATE_KEY] = state
    if state.options.given:
        state.mark_start()   # first: whatever stops this session now, the gate refuses latest/
    _xdist_configure(config)
    if not state.is_worker:
        config.pluginmanager.register(_Reporter(state), "harness-reporter")
    if state.options.executor == "ray" and getattr(config.option, "numprocesses", None):
        raise pytest.UsageError("--harness-executor ray spreads the runs over Ray's workers "
                                "itself; drop -n (pytest-xdist), or use --harness-executor local")
    if state.options.given:
        state.activate()   # an option the user set is checked now, before anything runs


def _refuse_borrowed_ini(config: pytest.Config) -> None:
    from harness.bundled import borrowed_ini

    params = config.invocation_params
    why = borrowed_ini(list(params.args), config.inipath, Path(params.dir),
                       [] if config.option.pyargs else [a.split("::")[0] for a in config.args])
    if why:
        raise pytest.UsageError(why)


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is not None and state.session is not None:
        state.session.close()


# --- cases, checkpoints and bars from the collected modules ---------------------------------
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module
    declares = any(hasattr(module, n) for n in ("HARNESS_CASES", "HARNESS_BARS"))
    if not declares and not set(HARNESS_FIXTURES) & set(metafunc.fixturenames):
        return
    hs = _activate(metafunc.config)
    _register_module(metafunc.config, module, hs)
    if "case" in metafunc.fixturenames:
        if not hasattr(module, "HARNESS_CASES"):
            raise pytest.UsageError(f"{module.__name__} uses the 'case' fixture but declares no "
                                    f"HARNESS_CASES (see harness.hookspec)")
        cases = hs.module_cases[module.__name__]
        if not cases:
            hs.note_no_cases(module)
        metafunc.parametrize("case", [pytest.param(c, id=c.name, marks=pytest.mark.xdist_group(c.id))
                                      for c in cases])
    if "checkpoint" in metafunc.fixturenames:
        demonstration = () if hs.options.checkpoints else getattr(module, "DEMONSTRATION", ())
        files = [*demonstration, *hs.checkpoints]
        metafunc.parametrize("checkpoint", files, ids=[f.id for f in files])


def _register_module(config: pytest.Config, module, hs) -> None:
    """A module's HARNESS_BARS and HARNESS_CASES, read once per module."""
    from harness.cases import module_cases
    from harness.expect import ExpectationError

    state = _state(config)
    if module.__name__ in state.modules:
        return
    state.modules[module.__name__] = module
    try:
        hs.book.add(getattr(module, "HARNESS_BARS", ()), module.__name__)
        hs.module_cases[module.__name__] = module_cases(module, hs)
    except ExpectationError as exc:
        raise pytest.UsageError(f"{module.__name__}: {exc}") from None


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items) -> None:
    state = _state(config)
    hs = state.session
    if hs is None:
        return
    from harness.cases import log_profile, session_problems

    if hs.log_record is not None and hs.options.profile == "auto":
        hs.set_profile(log_profile(hs, list(state.modules.values())))
    used = {name for item in items for name in getattr(item, "fixturenames", ())}
    problems = session_problems(hs, used)
    if problems:
        raise pytest.UsageError(problems[0])


def pytest_collection_finish(session: pytest.Session) -> None:
    """Hand the session every case the selected tests need, so an executor can start them all."""
    state = _state(session.config)
    hs = state.session
    if hs is None or session.config.option.collectonly:
        return
    from harness.executors import ExecutorError

    if any(set(HARNESS_FIXTURES) & set(getattr(i, "fixturenames", ())) for i in session.items):
        state.mark_start()

    needed = []
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "case" in callspec.params:
            needed.append(callspec.params["case"])
        elif "harness" in getattr(item, "fixturenames", ()):    # may read harness.cases()
            needed += hs.module_cases.get(getattr(getattr(item, "module", None), "__name__", ""), [])
    try:
        hs.submit(needed)
    except ExecutorError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.fixture
def harness(request: pytest.FixtureRequest):
    """The verdict recorder of this test: ``harness.run(case)``, ``harness.check(id, value)``."""
    hs = _activate(request.config)
    return hs.recorder(request.node.nodeid, request.module.__name__)


@pytest.fixture(scope="session")
def harness_session(request: pytest.FixtureRequest):
    return _activate(request.config)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    """Mark a harness test before anything can skip it (an empty parameter set, a skip mark),
    so the controller counts it even when it never runs."""
    if set(HARNESS_FIXTURES) & set(getattr(item, "fixturenames", ())):
        item.user_properties.append((USED_PROPERTY, "1"))
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    hs = _state(item.config).session
    if hs is None or not set(HARNESS_FIXTURES) & set(getattr(item, "fixturenames", ())):
        return (yield)
    from harness.session import RunFailed
    from harness.suite import UnknownBar

    refused = None
    try:
        result = yield
    except RunFailed as exc:
        refused = _once(_state(item.config), item.nodeid, str(exc))
    except UnknownBar as exc:
        refused = str(exc)
    finally:
        _publish(item, hs)
        item.config.hook.pytest_harness_verdicts(item=item, verdicts=list(hs.recorder(item.nodeid).verdicts))
    if refused is not None:
        pytest.fail(refused, pytrace=False)
    message = hs.recorder(item.nodeid).failure_message()
    if message:
        pytest.fail(message, pytrace=False)
    return result


def _once(state: "_State", nodeid: str, message: str) -> str:
    """A run failure in full under the first test it fails; the other tests of that case
    point there in one short line."""
    from harness.wording import brief

    first = state.failures_shown.setdefault(message, nodeid)
    if first == nodeid:
        return message
    case, _, why = message.partition(": ")
    return (f"{case}: the run failed (the reason in full under {first.rpartition('::')[2]}): "
            f"{brief(why, 100)}")


def _publish(item: pytest.Item, hs) -> None:
    """The test's verdicts and runs as user properties (junit XML; xdist's controller)."""
    for verdict in hs.recorder(item.nodeid).verdicts:
        item.user_properties.append((f"{VERDICT_PROPERTY}{verdict.id}", json.dumps(verdict.to_dict())))
    for case_id, record in hs.records.items():
        item.user_properties.append((f"{RUN_PROPERTY}{case_id}", json.dumps(
            {"run_id": record.run_id, "reused": bool(record.notes.get("reused"))})))


# --- pytest-xdist: one worker per GPU, the tests of one case on one worker -------------------
def _xdist_configure(config: pytest.Config) -> None:
    """A worker pins itself to the GPU its controller chose, before anything touches CUDA."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        devices = workerinput.get("harness_cuda_visible_devices")
        if devices is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = devices


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """Under ``-n``, tests sharing a case (a harness run) go to one worker, whatever the
    versions of pytest and xdist (``xdist_group`` marks alone are not kept by every pair)."""
    if config.getvalue("dist") not in ("load", "loadgroup"):
        return None
    from harness.placement import case_scheduler

    return case_scheduler(config, log)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist controller: tell each worker its GPU (only for harness sessions)."""
    if not _state(node.config).options.given:
        return
    from harness.placement import gpu_count, worker_devices

    devices = worker_devices(node.gateway.id, os.environ.get("CUDA_VISIBLE_DEVICES"), gpu_count())
    node.workerinput["harness_cuda_visible_devices"] = devices


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config):
    """``-n auto`` in a harness session: one worker per visible GPU (CPU count when none)."""
    try:
        given = _read(config).given
    except OptionError:
        return None                     # pytest_configure reports the bad option
    if not given:
        return None
    from harness.placement import gpu_count

    return gpu_count() or None


# --- reports ----------------------------------------------------------------------------------
class _Reporter:
    """Registered in the controlling process: records test outcomes and writes the reports at
    the end, for a session that used the harness."""

    def __init__(self, state: _State) -> None:
        self.state = state
        self.paths: dict = {}
        self.report: dict = {}
        self.used = False        # a harness test was set up (ran or was skipped; not only collected)
        self.outcomes: dict = {}  # harness test nodeid -> its outcome
        self.skips: list = []     # why harness tests were skipped
        self.nothing = ""         # the line saying that the session judged nothing, and why
        self.error = ""           # the line saying that a pytest_harness_update_json hook broke the report
        self.unwritten = ""       # the line saying why the reports could not be written

    @property
    def hs(self):
        return self.state.session

    @property
    def reporting(self) -> bool:
        """Reports are written for a session that ran a harness test or set a harness option
        (collected harness tests that were all deselected write nothing; ``--collect-only``
        runs nothing and writes nothing)."""
        if self.state.config.option.collectonly:
            return False
        return self.hs is not None and (self.used or bool(self.state.options.given))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        used = any(name == USED_PROPERTY for name, _ in report.user_properties)
        self.used = self.used or used
        if used and (report.when == "call" or report.outcome != "passed"):
            self.outcomes[report.nodeid] = report.outcome
            if report.skipped and isinstance(report.longrepr, tuple):
                self.skips.append(str(report.longrepr[2]).removeprefix("Skipped: "))
        if self.hs is None:
            if not used:
                return
            self.state.activate()          # xdist controller: a worker used the harness
            self.state.mark_start()
        if report.when == "call" and report.nodeid not in self.hs.verdicts:
            self.hs.collect_remote(report.nodeid, report.user_properties)  # from an xdist worker
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            outcome = "xfailed" if getattr(report, "wasxfail", None) is not None and report.skipped \
                else report.outcome
            self.hs.tests.append({"nodeid": report.nodeid, "outcome": outcome,
                                  "duration_s": round(report.duration, 3)})

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        hs = self.hs
        if not self.reporting:
            return
        from harness.environment import environment
        from harness.report import build_report
        from harness.report.writer import publish_or_say, updated_by_hooks

        options = hs.options
        if self.outcomes and not hs.all_verdicts() and exitstatus == pytest.ExitCode.OK:
            from harness.session import judged_nothing

            self.nothing = judged_nothing(self.outcomes, self.skips, hs.no_cases)
            session.exitstatus = exitstatus = pytest.ExitCode.TESTS_FAILED
        report = build_report(
            profile=hs.profile.name, verdicts=hs.all_verdicts(), tests=hs.tests, records=hs.records,
            environment=environment(hs.device, hs.root), started=self.state.started,
            finished=time.time(), exit_status=int(exitstatus),
            session_id=self.state.session_id or None,
            options={"profile": hs.profile.name, "device": str(hs.device),
                     "data_root": str(options.data_root) if options.data_root else None,
                     "init": options.init, "expect": list(options.expect), "rerun": options.rerun,
                     "from_log": str(options.from_log) if options.from_log else None,
                     "from_run": str(options.from_run) if options.from_run else None,
                     "log_format": options.from_log_format, "dataset": options.dataset})
        self.error = updated_by_hooks(session.config, report)
        if self.error:
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
            return
        self.report = report
        self.paths, self.unwritten = publish_or_say(report, options.reports_dir)
        if self.unwritten:
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR

    def pytest_terminal_summary(self, terminalreporter, exitstatus: int, config: pytest.Config) -> None:
        if not self.reporting:
            return
        if self.error:
            terminalreporter.write_line(self.error, red=True, bold=True)
            return
        from harness.report.terminal import write_summary

        if self.unwritten:
            terminalreporter.write_line(self.unwritten, red=True)
            return
        write_summary(terminalreporter, self.report, self.paths, self.hs.profile.name, self.nothing)
