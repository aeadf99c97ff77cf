"""The options of ``harness watch`` and what it does with them (wired in :mod:`harness.cli`)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.escape import terminal

DEFAULT_GRACE_S = 10.0


def configure(p: argparse.ArgumentParser) -> None:
    from harness.logs.declared import NAME as DECLARED
    from harness.options import PROFILE_CHOICES
    from harness.watch.record import WATCHABLE

    p.add_argument("log", nargs="?", type=Path, default=None,
                   help="the log a run is writing (or, after --, the command to run: "
                        "harness watch [options] -- python train.py ...)")
    p.add_argument("--log", dest="command_log", type=Path, default=None, metavar="PATH",
                   help="with a command: the log file it writes (default: its output)")
    p.add_argument("--log-format", choices=(*WATCHABLE, DECLARED), default=None,
                   help="default: detected from the first lines that tell")
    p.add_argument("--pattern", action="append", default=[], metavar="NAME=REGEX",
                   help="declare the log's format, as `harness log --pattern` (default: the "
                        "project's harness_log_patterns)")
    p.add_argument("--dataset", default=None, help="the run's dataset when its log does not print it")
    p.add_argument("--profile", choices=PROFILE_CHOICES, default="auto",
                   help="whose bars judge the run (default auto: the first profile holding the "
                        "pretrained-start floor of the log's dataset)")
    p.add_argument("--expect", action="append", default=[], metavar="ID>=VALUE",
                   help="override a bar by verdict id, as --harness-expect (repeatable)")
    p.add_argument("--bars-from", action="append", default=[], type=Path, metavar="SUITE_FILE",
                   help="also the HARNESS_BARS of this suite module (repeatable)")
    p.add_argument("--init-dir", action="append", default=[], type=Path, metavar="DIR",
                   help="where a relative init path of the log's arguments is looked for "
                        "(default: the command's folder, the log's folder, the working folder)")
    p.add_argument("--idle", type=float, default=None, metavar="SECONDS",
                   help="end after this many seconds without a new line (default: never)")
    p.add_argument("--wait", action="store_true", help="wait for the log file to appear")
    p.add_argument("--keep-going", action="store_true",
                   help="with a command: never stop it; judge it to its end")
    p.add_argument("--stop-now", action="store_true",
                   help="with a command: stop it the moment a verdict fails (default: a failing "
                        "init file lets the epoch under way reach its evaluation first)")
    p.add_argument("--grace", type=float, default=DEFAULT_GRACE_S, metavar="SECONDS",
                   help=f"after SIGTERM, SIGKILL the command's process group this much later "
                        f"(default {DEFAULT_GRACE_S:g})")
    p.add_argument("--reports-dir", type=Path, default=None, metavar="DIR",
                   help="write report.json/md/html under DIR/latest and the history row (default "
                        "with a command: reports; with a log: none written)")


def settings(args: argparse.Namespace, command_dir: Path | None):
    from harness.usage import CliError, declared_patterns
    from harness.logs import LogError
    from harness.watch.bars import BarsError, bar_book
    from harness.watch.watcher import Settings

    for name in ("idle", "grace"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            raise CliError(f"--{name} must be a number of seconds > 0, got {value!r}")
    try:
        patterns = declared_patterns(args.pattern)
        profile = args.profile if args.profile != "auto" else "smoke"
        book = bar_book(profile, args.expect, args.bars_from, Path.cwd())
    except (LogError, BarsError) as exc:
        raise CliError(terminal(exc)) from None
    log = args.command_log if command_dir is not None else args.log
    dirs = list(args.init_dir) or [d for d in (command_dir, log.parent if log else None, Path.cwd())
                                   if d is not None]
    return Settings(book=book, fmt=args.log_format, patterns=patterns, dataset=args.dataset,
                    auto_profile=args.profile == "auto", init_dirs=tuple(dirs),
                    keep_going=args.keep_going, stop_now=args.stop_now)


def run(args: argparse.Namespace) -> int:
    from harness.usage import CliError

    command = getattr(args, "command_argv", None)
    if command is not None:
        if not command:
            raise CliError("nothing after --: name the command to run, e.g. harness watch -- "
                           "python train.py")
        if args.log is not None:
            raise CliError(f"{args.log}: give a log to follow or a command after --, not both "
                           f"(the log a command writes: --log PATH)")
        from harness.watch.command import watch_command
        return watch_command(args, command, settings(args, Path.cwd()))
    if args.log is None:
        raise CliError("name the log to follow (harness watch LOG) or a command to run "
                       "(harness watch -- python train.py ...)")
    return _watch_log(args, settings(args, None))


def say(line: str) -> None:
    """One line of the watch to the terminal (the watcher escapes what it quotes of the log)."""
    print(line, flush=True)


def _watch_log(args: argparse.Namespace, how) -> int:
    from harness.usage import CliError
    from harness.logs import LogError
    from harness.watch.runner import exit_status, follow_log, publish, report_of, summary_lines
    from harness.watch.watcher import Watch

    try:
        watch = Watch(str(args.log), how, say)
        outcome = follow_log(watch, args.log, idle_s=args.idle, wait=args.wait)
    except LogError as exc:
        raise CliError(terminal(exc)) from None
    for line in summary_lines(watch, outcome):
        say(line)
    report = report_of(watch, outcome, {"watched": f"log {args.log}", "profile": watch.ctx.book.profile,
                                        "expect": list(args.expect)})
    if args.reports_dir is not None:
        publish(report, args.reports_dir, say)
    sys.stdout.flush()
    return exit_status(report)
