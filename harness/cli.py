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
    p.add_argument("--html", action="store_true",
                   help="render the self-contained HTML page instead (written to --output, default "
                        "report.html beside the report.json)")


@command("report", "render a report.json again as markdown (or, with --html, as a page)", _report_args)
def _report(args: argparse.Namespace) -> int:
    from harness.report.markdown import render_markdown

    path = args.path / "report.json" if args.path.is_dir() else args.path
    if not path.is_file():
        raise CliError(f"{args.path}: no report.json there; pass a report.json or its folder")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        if args.html:
            return _write_html(report, path, args.output)
        text = render_markdown(report)
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CliError(f"{path}: not a harness report ({type(exc).__name__}: {exc})") from None
    if args.output:
        from harness.storage import write_text
        write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


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
    from harness.gate import gate_problems

    path = args.path / "report.json" if args.path.is_dir() else args.path
    if not path.is_file():
        raise CliError(f"{args.path}: no report.json there; did the pytest session run "
                       f"with this --reports-dir?")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        problems = gate_problems(report)
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CliError(f"{path}: not a harness report ({type(exc).__name__}: {exc})") from None
    for line in problems:
        print(line)
    counts = report.get("counts", {})
    print(f"gate: {'FAILED' if problems else 'passed'} ({counts.get('passed', 0)}/"
          f"{counts.get('verdicts', 0)} verdicts passed, profile {report.get('profile')})")
    return 1 if problems else 0


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
