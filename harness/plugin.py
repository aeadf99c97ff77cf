"""pytest hooks and fixtures only: options, profiles, verdict collection, reports.

Every hook here hands its work to a library object (:class:`harness.session.HarnessSession`,
:mod:`harness.report`); this module is the only one in the library that imports pytest.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from harness.environment import environment
from harness.logs import FORMATS as LOG_FORMATS
from harness.profiles import PROFILE_CHOICES
from harness.report import build_report, check_reports_dir, publish_session
from harness.report.history import HistoryError
from harness.report.terminal import write_summary
from harness.placement import worker_devices
from harness.session import RUN_PROPERTY, HarnessSession, OptionError, Options, resolve

SESSION_KEY = pytest.StashKey[HarnessSession]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "harness: executable expectations for training runs")
    group.addoption("--profile", choices=PROFILE_CHOICES, default="auto",
                    help="which specs and bars to run: smoke (CPU, digits), nightly (CUDA, CIFAR "
                         "fine-tune), full (the 16-state schedule); auto picks nightly when a CUDA "
                         "GPU and --data-root are present, smoke otherwise (default: auto)")
    group.addoption("--device", default=None, help="torch device for runs (default: cuda if available, else cpu)")
    group.addoption("--data-root", default=None, type=Path,
                    help="folder holding the CIFAR data (cifar-10-batches-py/, cifar-100-python/)")
    group.addoption("--download", action="store_true", help="let torchvision download missing CIFAR data into --data-root")
    group.addoption("--init", default=None,
                    help="init checkpoint for every run: a local file, or timm:NAME for timm's hub weights; "
                         "an --init claims a pretrained start and is judged as one")
    group.addoption("--reports-dir", default=Path("reports"), type=Path,
                    help="where report.json/report.md (latest/) and stored runs (runs/) go (default: reports/)")
    group.addoption("--rerun", action="store_true", help="ignore stored runs and train again")
    group.addoption("--expect", action="append", default=[], metavar="ID>=VALUE",
                    help="override a bar by verdict id, e.g. --expect 'baseline/digits/state0/accuracy>=97' "
                         "(repeatable; ops >=, <=, ==)")
    group.addoption("--no-progress", action="store_true", help="no progress bars during training")
    group.addoption("--threads", type=int, default=1,
                    help="torch CPU threads for runs on the CPU (default 1: the CPU models are small, "
                         "and threads collapse when cores are shared)")
    group.addoption("--from-log", default=None, type=Path, metavar="PATH",
                    help="judge an existing run instead of training: a research-format log, an "
                         "MLLOG file or a timm output folder (no GPU or data needed)")
    group.addoption("--from-log-format", default=None, choices=tuple(LOG_FORMATS),
                    help="the --from-log format (default: detected; pytest itself owns --log-format)")
    group.addoption("--dataset", default=None,
                    help="with --from-log: the run's dataset when the log does not print it")
    group.addoption("--no-compile", action="store_true",
                    help="train eagerly on CUDA instead of with torch.compile (the default there); "
                         "stored runs are reused either way")
    group.addoption("--checkpoints", nargs="+", default=[], type=Path, metavar="PATH",
                    help="checkpoint files (or folders searched recursively) that suites/checkpoints "
                         "judges, one test per file (default: its demonstration set)")


def _options(config: pytest.Config) -> Options:
    reports_dir = config.getoption("reports_dir")
    if not reports_dir.is_absolute():
        reports_dir = Path(config.invocation_params.dir) / reports_dir
    profile = config.getoption("profile")
    data_root = config.getoption("data_root")
    from_log = config.getoption("from_log")
    if from_log is not None and not from_log.is_absolute():
        from_log = Path(config.invocation_params.dir) / from_log
    if profile == "auto" and data_root is None and from_log is None:
        profile = "smoke"  # nightly needs a data root: auto never picks what cannot run
    return Options(profile=profile, device=config.getoption("device"), data_root=data_root,
                   init=config.getoption("init"), reports_dir=reports_dir,
                   rerun=config.getoption("rerun"), download=config.getoption("download"),
                   expect=tuple(config.getoption("expect")),
                   progress=not config.getoption("no_progress"), threads=config.getoption("threads"),
                   from_log=from_log, log_format=config.getoption("from_log_format"),
                   dataset=config.getoption("dataset"), compile=not config.getoption("no_compile"),
                   checkpoints=tuple(config.getoption("checkpoints")))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (run on a GPU runner: pytest -m gpu)")
    config.addinivalue_line("markers", "slow: minutes of CPU time (deselect with -m 'not slow')")
    _xdist_configure(config)
    options = _options(config)
    try:
        resolved = resolve(options)
    except OptionError as exc:
        raise pytest.UsageError(str(exc)) from None
    try:
        check_reports_dir(options.reports_dir)
    except HistoryError as exc:
        raise pytest.UsageError(str(exc)) from None
    hs = HarnessSession(options, resolved)
    config.stash[SESSION_KEY] = hs
    if not hasattr(config, "workerinput"):  # xdist workers leave the reports to the controller
        config.pluginmanager.register(_Reporter(hs), "harness-reporter")


def _xdist_configure(config: pytest.Config) -> None:
    """Under pytest-xdist: the controller schedules by group (tests of one case share a worker);
    a worker pins itself to the GPU its controller chose, before anything touches CUDA."""
    config.addinivalue_line("markers", "xdist_group(name): tests sharing a run go to one xdist worker")
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        if workerinput.get("harness_loadgroup"):
            config.option.loadgroup = True
        devices = workerinput.get("harness_cuda_visible_devices")
        if devices is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = devices
    elif getattr(config.option, "dist", "no") == "load":
        config.option.dist = "loadgroup"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist controller: tell each worker its GPU and that tests are grouped by case."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    devices = worker_devices(node.gateway.id, os.environ.get("CUDA_VISIBLE_DEVICES"), count)
    node.workerinput["harness_cuda_visible_devices"] = devices
    node.workerinput["harness_loadgroup"] = node.config.getoption("dist") == "loadgroup"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config):
    """``-n auto``: one worker per visible GPU (CPU count when there is none)."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return count or None


def _session(config: pytest.Config) -> HarnessSession:
    return config.stash[SESSION_KEY]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "checkpoint" in metafunc.fixturenames:
        _parametrize_checkpoints(metafunc)
    if "case" not in metafunc.fixturenames:
        return
    suite = getattr(metafunc.module, "SUITE", None)
    if suite is None:
        raise pytest.UsageError(f"{metafunc.module.__name__} uses the 'case' fixture but sets no SUITE name")
    cases = _session(metafunc.config).profile.cases_for(suite)
    metafunc.parametrize("case", [pytest.param(c, id=c.name, marks=pytest.mark.xdist_group(c.id))
                                  for c in cases])


def _parametrize_checkpoints(metafunc: pytest.Metafunc) -> None:
    """--checkpoints files (and the --init file), else the suite module's DEMONSTRATION cases."""
    hs = _session(metafunc.config)
    demonstration = () if hs.options.checkpoints else getattr(metafunc.module, "DEMONSTRATION", ())
    cases = [*demonstration, *hs.checkpoints]
    metafunc.parametrize("checkpoint", cases, ids=[c.id for c in cases])


@pytest.fixture
def harness(request: pytest.FixtureRequest):
    """The verdict recorder of this test: ``harness.run(case)``, ``harness.check(id, value)``."""
    return _session(request.config).recorder(request.node.nodeid)


@pytest.fixture(scope="session")
def harness_session(request: pytest.FixtureRequest) -> HarnessSession:
    return _session(request.config)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    try:
        return (yield)
    finally:
        recorder = _session(item.config).recorder(item.nodeid)
        for verdict in recorder.verdicts:
            item.user_properties.append((f"verdict:{verdict.id}", json.dumps(verdict.to_dict())))
        for case_id, record in _session(item.config).records.items():
            item.user_properties.append((f"{RUN_PROPERTY}{case_id}", json.dumps(
                {"run_id": record.run_id, "reused": bool(record.notes.get("reused"))})))
        message = recorder.failure_message()
        if message:
            pytest.fail(message, pytrace=False)


class _Reporter:
    """Registered per session: records test outcomes and writes the reports at the end."""

    def __init__(self, hs: HarnessSession) -> None:
        self.hs = hs
        self.paths: dict = {}
        self.report: dict = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
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
        options = hs.options
        report = build_report(
            profile=hs.profile.name, verdicts=hs.all_verdicts(), tests=hs.tests, records=hs.records,
            environment=environment(hs.device), started=hs.started, finished=time.time(),
            exit_status=int(exitstatus),
            options={"profile": hs.profile.name, "device": str(hs.device),
                     "data_root": str(options.data_root) if options.data_root else None,
                     "init": options.init, "expect": list(options.expect), "rerun": options.rerun,
                     "from_log": str(options.from_log) if options.from_log else None,
                     "log_format": options.log_format, "dataset": options.dataset})
        self.report = report
        self.paths = publish_session(report, options.reports_dir)

    def pytest_terminal_summary(self, terminalreporter, exitstatus: int, config: pytest.Config) -> None:
        write_summary(terminalreporter, self.report, self.paths, self.hs.profile.name)
