"""The harness's pytest options, each defined once: name, short alias, ini key, type, default, help.

A user sets an option on the command line (``--harness-profile nightly``, or the short
``--profile nightly`` where no other plugin owns that name) or in ``[tool.pytest.ini_options]``
(``harness_profile = "nightly"``); the command line wins. :class:`Options` is the frozen,
typed result; :func:`resolve` (below) validates it once, at the edge.

This module imports neither torch nor pytest: the plugin reads it at startup, and a session that
uses no harness option and no harness fixture must stay as light as pytest alone.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from harness import logsyntax                 # imports nothing
from harness.threads import DEFAULT_THREADS   # torch-free: the plugin reads options at startup
from harness.timmref import TimmRefError, timm_name   # imports nothing


class OptionError(ValueError):
    """An option the harness cannot honour; the message is one line saying what to change."""


@dataclass(frozen=True)
class ProfileInfo:
    """A profile's name and what it needs of the machine. Which runs and bars a profile holds is
    the suites' data (suites/profiles.py); the engine never knows which profile runs."""

    name: str
    description: str
    needs_cuda: bool


PROFILES: dict[str, ProfileInfo] = {p.name: p for p in (
    ProfileInfo("smoke", "CPU embedded default: small models on bundled data, minutes", False),
    ProfileInfo("nightly", "CUDA: the nightly budget of each suite", True),
    ProfileInfo("full", "CUDA: each suite's whole schedule", True),
    ProfileInfo("reference", "CUDA: the research group's own pruning schedule and recipe, to put "
                "beside their runs", True),
)}
PROFILE_CHOICES = ("auto", *PROFILES)
EXECUTOR_CHOICES = ("local", "ray")   # harness.executors.EXECUTORS


def _path(text: str) -> Path:
    return Path(text)


def _absolute(value: Any, base: Path) -> Any:
    """A relative path made absolute from ``base``; any other value as it is."""
    if isinstance(value, Path) and not value.is_absolute():
        return base / value
    return value


def _init_at(value: Any, base: Path) -> Any:
    """An init fixed when read: ``timm:NAME`` as given, a file's path made absolute from
    ``base`` (the invocation folder for --harness-init, the ini file's folder for harness_init)."""
    if not isinstance(value, str) or _init_timm_name(value) is not None:
        return value
    return value if Path(value).is_absolute() else str(base / value)


@dataclass(frozen=True)
class OptionSpec:
    """One option: ``--harness-<name>``, the short ``--<name>`` where free, ini ``harness_<name>``."""

    name: str                       # field of Options, e.g. "data_root"
    help: str
    default: Any = None
    type: Optional[Callable] = None
    action: Optional[str] = None    # "store_true", "append"
    choices: Optional[tuple] = None
    metavar: Optional[str] = None
    ini: bool = False               # also readable from [tool.pytest.ini_options]
    short: bool = True              # offer --<name> when no other plugin owns it
    cli: bool = True                # False: an ini setting only
    lines: bool = False             # an ini list, one entry per line
    anchor: Callable[[Any, Path], Any] = _absolute   # a value read, fixed against its base folder

    @property
    def flag(self) -> str:
        return "--harness-" + self.name.replace("_", "-")

    @property
    def dest(self) -> str:
        return "harness_" + self.name

    @property
    def short_flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def ini_key(self) -> str:
        return "harness_" + self.name


OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("profile", "which runs and bars of each suite: smoke (CPU), nightly, full and "
               "reference (CUDA); auto picks nightly when a CUDA GPU and a data root are present, smoke "
               "otherwise (default: auto)", "auto", choices=PROFILE_CHOICES, ini=True),
    OptionSpec("device", "torch device for runs: cpu, cuda, cuda:N (default: cuda if available)",
               ini=True),
    OptionSpec("data_root", "folder holding the datasets (CIFAR: cifar-10-batches-py/, "
               "cifar-100-python/)", type=_path, metavar="DIR", ini=True),
    OptionSpec("download", "let torchvision download missing CIFAR data into the data root",
               False, action="store_true"),
    OptionSpec("init", "init checkpoint for every run: a local file, or timm:NAME for timm's hub "
               "weights; an init claims a pretrained start and is judged as one (a relative "
               "harness_init in the ini file is read from the ini file's folder)", metavar="FILE",
               ini=True, anchor=_init_at),
    OptionSpec("reports_dir", "where latest/ (report.json, .md, .html), runs/ and "
               "history.sqlite go (default: reports)", Path("reports"), type=_path,
               metavar="DIR", ini=True),
    OptionSpec("rerun", "ignore stored runs and train again", False, action="store_true"),
    OptionSpec("expect", "override a bar by verdict id, e.g. "
               "'baseline/digits/state0/accuracy>=97' (repeatable; ops >=, <=, ==)", (),
               action="append", metavar="ID>=VALUE"),
    OptionSpec("no_progress", "no training progress (shown by default past pytest's capture: a "
               "live bar on a terminal, one line per epoch in a log) and no live output of "
               "commands", False,
               action="store_true"),
    OptionSpec("threads", f"torch CPU threads for runs on the CPU (default {DEFAULT_THREADS}: "
               "small models gain nothing from more, and threads collapse on shared cores)",
               DEFAULT_THREADS, type=int, ini=True),
    OptionSpec("from_log", "judge an existing run instead of training: a training log, an MLLOG "
               "file or a timm output folder (no GPU or data needed)", type=_path,
               metavar="PATH"),
    OptionSpec("from_log_format", "the --harness-from-log format (default: detected)",
               metavar="FORMAT"),
    OptionSpec("dataset", "with --harness-from-log: the run's dataset when the log does not "
               "print it; with --harness-from-run: the data to evaluate its stored states on (a "
               "dataset name or package.module:factory)", metavar="NAME"),
    OptionSpec("from_run", "judge a pruning run from its artifacts instead of training: its save "
               "folder (the research group's {k}checkpoint.pth.tar files and stdout log, or the "
               "files --harness-run-layout declares; the log may be given with "
               "--harness-from-log) or a run of the harness's store "
               "(reports/runs/<key>)", type=_path, metavar="DIR"),
    OptionSpec("from_run_model", "with --harness-from-run: the model the run trained, as "
               "package.module:factory, to read its layout and evaluate its stored states",
               metavar="IMPORT_PATH"),
    OptionSpec("run_layout", "with --harness-from-run: the run folder's layout and claim, one "
               "'key: value' per ini line or KEY=VALUE per option (repeatable): checkpoint "
               "(a file name with {k}, e.g. state{k}_checkpoint.pth.tar), best, log, remaining "
               "(a regex with (?P<remaining>...) and (?P<state>...)), state, claim, method, scope, "
               "rate, final_sparsity, states, nested, rewind, init, prunable, preset (default: the "
               "research group's layout)", (), action="append", metavar="KEY=VALUE", ini=True,
               lines=True),
    OptionSpec("no_compile", "train eagerly on CUDA instead of with torch.compile (the default "
               "there); stored runs are reused either way", False, action="store_true"),
    OptionSpec("checkpoints", "a checkpoint file, or a folder searched recursively, that "
               "suites/checkpoints judges (repeat the option for several)", (), type=_path,
               action="append", metavar="PATH"),
    OptionSpec("executor", "where runs train: local (in this process, one after another; the "
               "default) or ray (every run the session needs submitted up front as a Ray task; "
               "needs the ray extra and a runs store every node sees)", "local",
               choices=EXECUTOR_CHOICES, ini=True),
    OptionSpec("ray_address", "with --harness-executor ray: the cluster to join (auto: the one "
               "`ray start` runs on this machine, or the head's HOST:PORT); default: a local Ray "
               "started for the session", metavar="ADDRESS", ini=True),
    OptionSpec("bars", "extra bars, one per line: 'ID OP VALUE [UNIT] [-- TITLE]', e.g. "
               "'imagenet/top1 >= 75.9 % -- ResNet-50 top-1' (ini only)", (), ini=True,
               short=False, cli=False, lines=True),
    OptionSpec("log_patterns", f"a lab's own log format, one 'name: regex' per line (names: "
               f"{logsyntax.listed()}); used by --harness-from-log, --harness-from-run's log, "
               f"harness.read_log and CommandSpec runs (ini only)", (),
               ini=True, short=False, cli=False, lines=True),
)
BY_NAME = {o.name: o for o in OPTIONS}


@dataclass(frozen=True)
class Options:
    """What the user asked for, typed; validated by :func:`resolve`."""

    profile: str = "auto"
    device: Optional[str] = None
    data_root: Optional[Path] = None
    download: bool = False
    init: Optional[str] = None
    reports_dir: Path = Path("reports")
    rerun: bool = False
    expect: tuple = ()
    no_progress: bool = False
    threads: int = DEFAULT_THREADS
    from_log: Optional[Path] = None
    from_log_format: Optional[str] = None
    dataset: Optional[str] = None
    from_run: Optional[Path] = None
    from_run_model: Optional[str] = None
    run_layout: tuple = ()
    no_compile: bool = False
    checkpoints: tuple = ()
    executor: str = "local"
    ray_address: Optional[str] = None
    bars: tuple = ()
    log_patterns: tuple = ()
    given: tuple = field(default=(), compare=False)   # the names the user set (CLI or ini)

    @property
    def progress(self) -> bool:
        return not self.no_progress

    @property
    def compile(self) -> bool:
        return not self.no_compile


def read_options(getoption: Callable[[str], Any], getini: Callable[[str], Any],
                 invocation: Path, ini_base: Path) -> Options:
    """Options from the command line (``getoption(dest)``, relative paths from ``invocation``,
    where pytest was started) over the ini file (``getini(key)``, relative paths from
    ``ini_base``, the ini file's folder)."""
    values: dict = {}
    given = []
    for spec in OPTIONS:
        value, base = (getoption(spec.dest) if spec.cli else None), invocation
        if _unset(value, spec) and spec.ini:
            value, base = _from_ini(spec, getini(spec.ini_key)), ini_base
        if _unset(value, spec):
            continue
        given.append(spec.name)
        if isinstance(value, (list, tuple)):
            value = tuple(spec.anchor(v, base) for v in value)
        values[spec.name] = spec.anchor(value, base)
    return Options(**values, given=tuple(given))


def _unset(value: Any, spec: OptionSpec) -> bool:
    return value is None or value == spec.default or value == [] or value == ()


def _from_ini(spec: OptionSpec, raw: Any) -> Any:
    if spec.action == "append" or spec.lines:
        return tuple(line.strip() for line in raw or () if line.strip())
    text = str(raw).strip() if raw is not None else ""
    if not text:
        return None
    if spec.type is None:
        return text
    try:
        return spec.type(text)
    except ValueError:
        raise OptionError(f"{spec.ini_key} = {text!r} in the ini file: expected "
                          f"{getattr(spec.type, '__name__', 'a value')}") from None


# --- validation at the edge --------------------------------------------------------------------
@dataclass
class Resolved:
    """Options checked against this machine: the profile, the device, the bar overrides, the
    parsed ``--harness-from-log`` record, the ``--harness-checkpoints`` files."""

    profile: ProfileInfo
    device: Any                     # torch.device
    overrides: tuple = ()           # tuple[harness.expect.Override]
    log_record: Any = None          # Optional[RunRecord]
    checkpoints: tuple = ()         # tuple[harness.suite.CheckpointFile]
    run_record: Any = None          # Optional[RunRecord]: the --harness-from-run run
    config_bars: tuple = ()         # tuple[harness.suite.Bar] from the ini file
    log_patterns: Any = None        # harness.logs.declared.LogPatterns from the ini file


def resolve(options: Options, cuda_available: Optional[bool] = None) -> Resolved:
    """Validate ``options`` once; raise :class:`OptionError` naming the option to change."""
    import torch

    cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    name = options.profile
    if name == "auto":
        usable = cuda and (options.data_root is not None or options.from_log is not None)
        name = "nightly" if usable else "smoke"
    if name not in PROFILES:
        raise OptionError(f"--harness-profile {options.profile!r} is unknown; use one of "
                          f"{', '.join(PROFILE_CHOICES)}")
    profile = PROFILES[name]
    if options.from_run is not None:
        return _resolve_run(options, profile, cuda)
    if options.from_log is not None:
        return _resolve_log(options, profile)
    device = _device(options.device, cuda)
    if profile.needs_cuda and device.type != "cuda":
        why = ("no CUDA GPU is visible (torch.cuda.is_available() is False)" if not cuda
               else f"--harness-device {options.device} is not a CUDA device")
        raise OptionError(f"--harness-profile {name} needs a CUDA GPU but {why}; run it on a GPU "
                          f"runner, or use --harness-profile smoke on this machine")
    _check_common(options)
    return Resolved(profile, device, _overrides(options), checkpoints=_checkpoints(options),
                    config_bars=_config_bars(options), log_patterns=_log_patterns(options))


def _check_common(options: Options) -> None:
    if options.data_root is not None and not options.download and not options.data_root.is_dir():
        raise OptionError(f"--harness-data-root {str(options.data_root)!r} is not a directory; "
                          f"pass the folder holding the datasets, or add --harness-download")
    _check_init(options.init)
    if not isinstance(options.threads, int) or options.threads < 1:
        raise OptionError(f"--harness-threads must be a whole number >= 1, got {options.threads!r}")
    _check_executor(options)


def _check_executor(options: Options) -> None:
    if options.executor not in EXECUTOR_CHOICES:   # an ini value; argparse checks the CLI
        raise OptionError(f"harness_executor = {options.executor!r}: use one of "
                          f"{', '.join(EXECUTOR_CHOICES)}")
    if options.ray_address is not None and options.executor != "ray":
        raise OptionError(f"--harness-ray-address {options.ray_address!r} is used only with "
                          f"--harness-executor ray; add that option, or drop the address")
    if options.executor == "ray":
        try:
            import ray  # noqa: F401
        except ImportError as exc:
            raise OptionError(f"--harness-executor ray needs Ray, which cannot be imported here "
                              f"({exc}): pip install -e '.[ray]' (or pip install ray), or use "
                              f"--harness-executor local") from None


def _device(text: Optional[str], cuda: bool):
    import torch

    if text is None:
        return torch.device("cuda" if cuda else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise OptionError(f"--harness-device {text!r} is not a torch device; use cpu, cuda or "
                          f"cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise OptionError(f"--harness-device {text!r}: the harness runs on cpu or cuda, got "
                          f"{device.type!r}")
    if device.type == "cuda" and not cuda:
        raise OptionError(f"--harness-device {text} asks for CUDA but no CUDA GPU is visible; "
                          f"use --harness-device cpu")
    return device


def check_device(text: Optional[str]):
    """The torch device ``text`` names, checked against this machine (for `harness run`)."""
    import torch

    return _device(text, torch.cuda.is_available())


def _init_timm_name(init: str) -> Optional[str]:
    try:
        return timm_name(init)
    except TimmRefError as exc:
        raise OptionError(f"--harness-init {exc}") from None


def _check_init(init: Optional[str]) -> None:
    if init is None or _init_timm_name(init) is not None:
        return
    if not Path(init).is_file():
        raise OptionError(f"--harness-init {init!r}: no such file (harness_init in the ini file "
                          f"is read from the ini file's folder, --harness-init from where pytest "
                          f"started); pass a checkpoint file or timm:NAME")


def init_path(init: Optional[str]) -> Optional[str]:
    """An init as runs record it: a file's absolute path, or ``timm:NAME`` as given."""
    if init is None or _init_timm_name(init) is not None:
        return init
    return str(Path(init).resolve())


def _overrides(options: Options) -> tuple:
    """``--harness-expect`` parsed (which ids exist is checked once the suites are collected)."""
    from harness.expect import ExpectationError, parse_override

    try:
        return tuple(parse_override(text) for text in options.expect)
    except ExpectationError as exc:
        raise OptionError(str(exc)) from None


def _config_bars(options: Options) -> tuple:
    from harness.expect import ExpectationError
    from harness.suite import parse_bar

    try:
        return tuple(parse_bar(line) for line in options.bars)
    except ExpectationError as exc:
        raise OptionError(f"harness_bars in the ini file: {exc}") from None


def _log_patterns(options: Options):
    if not options.log_patterns:
        return None
    from harness.logs import LogError
    from harness.logs.declared import LogPatterns

    try:
        return LogPatterns.from_lines(options.log_patterns, "harness_log_patterns in the ini file")
    except LogError as exc:
        raise OptionError(str(exc)) from None


def _checkpoints(options: Options) -> tuple:
    """``--harness-checkpoints`` files (folders searched recursively) plus the init file."""
    from harness.forensics.inspection import find_checkpoints
    from harness.suite import CheckpointFile

    paths = options.checkpoints
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise OptionError(f"--harness-checkpoints: no such file or folder: {', '.join(missing)}; "
                          f"pass checkpoint files or folders holding them, one per option")
    files = find_checkpoints(paths)
    if paths and not files:
        raise OptionError(f"--harness-checkpoints {' '.join(map(str, paths))}: no checkpoint "
                          f"files (.safetensors, .pth, .pth.tar, .pt, .bin, .ckpt) there")
    found = [CheckpointFile(str(f)) for f in files]
    if options.init and _init_timm_name(options.init) is None:
        found.append(CheckpointFile(str(Path(options.init)), claim="the --init of a run",
                                    name=f"--init {options.init}"))
    return tuple(found)


def _resolve_log(options: Options, profile: ProfileInfo) -> Resolved:
    """--harness-from-log: the parsed log is the run the suites judge; judging it needs no CUDA,
    no data root and no init file (an init given here is the pretrained claim, not a file)."""
    import torch

    from harness.logs import FORMATS, LogError, parse_log
    from harness.logs.arguments import dataset_name

    fmt = options.from_log_format
    patterns = _log_patterns(options)
    known = [*FORMATS, "declared"] if patterns is not None else list(FORMATS)
    if fmt is not None and fmt not in known:
        raise OptionError(f"--harness-from-log-format {fmt!r} is unknown; use one of "
                          f"{', '.join(known)}")
    try:
        record = parse_log(options.from_log, fmt, option="--harness-from-log-format",
                           patterns=patterns)
    except LogError as exc:
        raise OptionError(f"--harness-from-log {exc}") from None
    dataset = dataset_name(options.dataset) or record.dataset
    if not dataset:
        raise OptionError(f"--harness-from-log {options.from_log}: the log names no dataset; "
                          f"pass --harness-dataset NAME")
    record = claimed(record, dataset, options)
    return Resolved(profile, torch.device("cpu"), _overrides(options), log_record=record,
                    config_bars=_config_bars(options), log_patterns=patterns)


def claimed(record, dataset: str, options: Options):
    """The log's record with the dataset and the pretrained claim the options give."""
    from dataclasses import replace

    from harness.logs.arguments import NUM_CLASSES

    notes = dict(record.notes, dataset_from="--harness-dataset" if options.dataset else "log",
                 pretrained_claim_from="--harness-init" if options.init else "log")
    classes = record.num_classes if dataset == record.dataset else NUM_CLASSES.get(dataset, 0)
    return replace(record, dataset=dataset, notes=notes, num_classes=classes,
                   init=options.init or record.init,
                   claims_pretrained=bool(options.init) or record.claims_pretrained)


def _resolve_run(options: Options, profile: ProfileInfo, cuda: bool) -> Resolved:
    """--harness-from-run: the run folder is opened (files listed, log parsed, claims read) now;
    a folder that is no run is one line. Its stored states are read when a test judges them."""
    from harness.runfolder import RunFolderError, open_folder
    from harness.runfolder.declaration import layout_from_lines

    if options.from_run_model is not None and not options.from_run_model.count(":") == 1:
        raise OptionError(f"--harness-from-run-model {options.from_run_model!r}: expected "
                          f"package.module:factory")
    device = _device(options.device, cuda)
    try:
        layout = layout_from_lines(options.run_layout, "harness_run_layout / --harness-run-layout")
        run = open_folder(options.from_run, log=options.from_log, model=options.from_run_model,
                          dataset=options.dataset, data_root=options.data_root,
                          device=str(device), patterns=_log_patterns(options), layout=layout)
    except RunFolderError as exc:
        raise OptionError(f"--harness-from-run {exc}") from None
    return Resolved(profile, device, _overrides(options), run_record=run.record,
                    config_bars=_config_bars(options))
