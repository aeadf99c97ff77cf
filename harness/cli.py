"""The `harness` command: subcommands by registry (`harness report`, `harness inspect`, ...)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable]] = {}


class CliError(Exception):
    """A usage mistake: printed as one line, exit code 2."""


def command(name: str, help_text: str, configure: Callable[[argparse.ArgumentParser], None]):
    def deco(fn: Callable) -> Callable:
        COMMANDS[name] = (help_text, configure, fn)
        return fn
    return deco


def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", type=Path, help="a report.json, or a folder holding one (e.g. reports/latest)")
    p.add_argument("--output", type=Path, default=None, help="write the markdown here instead of stdout")


@command("report", "render a report.json again as markdown", _report_args)
def _report(args: argparse.Namespace) -> int:
    from harness.report.markdown import render_markdown

    path = args.path / "report.json" if args.path.is_dir() else args.path
    if not path.is_file():
        raise CliError(f"{args.path}: no report.json there; pass a report.json or its folder")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        text = render_markdown(report)
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CliError(f"{path}: not a harness report ({type(exc).__name__}: {exc})") from None
    if args.output:
        from harness.storage import write_text
        write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


def _log_args(p: argparse.ArgumentParser) -> None:
    from harness.logs import FORMATS

    p.add_argument("path", type=Path, help="a research-format log, an MLLOG file or a timm output folder")
    p.add_argument("--log-format", choices=tuple(FORMATS), default=None,
                   help="default: detected; " + "; ".join(f"{n}: {f.description}" for n, f in FORMATS.items()))
    p.add_argument("--json", action="store_true", help="print the whole RunRecord as JSON")


@command("log", "read a training log into a run record and print what it holds", _log_args)
def _log(args: argparse.Namespace) -> int:
    from harness.logs import LogError, parse_log
    from harness.logs.summary import record_lines

    try:
        record = parse_log(args.path, args.log_format)
    except LogError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        sys.stdout.write(json.dumps(record.to_dict(), indent=2, default=str) + "\n")
    else:
        sys.stdout.write("\n".join(record_lines(record)) + "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness", description="Executable expectations for deep-learning training and "
        "pruning runs. The suites run under pytest (pytest suites/baseline); this command "
        "holds the tools around them.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, configure, _) in sorted(COMMANDS.items()):
        configure(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command][2](args)
    except CliError as exc:
        print(f"harness {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
