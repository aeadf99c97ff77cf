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


def _inspect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                   help="checkpoint files, or folders searched recursively for them")
    p.add_argument("--arch", default=None, help="compare with fresh inits of this architecture "
                   "(a harness model or a timm model name) and audit loading the file into it")
    p.add_argument("--num-classes", type=int, default=None,
                   help="classifier size for --arch (default: the file's head, else the model's)")
    p.add_argument("--json", action="store_true", help="print one JSON object per file, as a list")


@command("inspect", "judge checkpoint files from their weights alone: trained, random-init, "
         "finetune-init, partially-trained, untrained-constant, non-finite, unreadable, unsafe",
         _inspect_args)
def _inspect(args: argparse.Namespace) -> int:
    from harness.forensics.inspection import find_checkpoints, inspect_checkpoint
    from harness.forensics.table import render_inspections

    if args.arch is not None:
        from harness.models import ModelError, check_model_name
        try:
            check_model_name(args.arch)
        except ModelError as exc:
            raise CliError(f"--arch: {exc}") from None
    if args.num_classes is not None and args.num_classes < 1:
        raise CliError(f"--num-classes must be an int >= 1, got {args.num_classes}")
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        raise CliError(f"no such file or folder: {', '.join(missing)}")
    files = find_checkpoints(args.paths)
    if not files:
        raise CliError(f"no checkpoint files (.safetensors, .pth, .pth.tar, .pt, .bin, .ckpt) "
                       f"under {', '.join(map(str, args.paths))}")
    results = [inspect_checkpoint(f, arch=args.arch, num_classes=args.num_classes) for f in files]
    if args.json:
        sys.stdout.write(json.dumps([r.to_dict() for r in results], indent=2) + "\n")
    else:
        sys.stdout.write(render_inspections(results))
    return 1 if any(r.problem for r in results) else 0


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
