"""What a run prints inside a pytest session, shown live past pytest's output capture: a
command's output lines and training progress (a live bar on a terminal, one line per epoch in a
log), escaped for the terminal. The pytest plugin hands these to the run context; ``config`` is
the pytest config (only its plugin manager is used, so this module imports no pytest)."""
from __future__ import annotations

import contextlib


def with_echo(context, config):
    """Run contexts print a command's output live, and training progress (a live bar on a
    terminal, one line per epoch otherwise), past pytest's capture, escaped."""
    from dataclasses import replace

    from harness.escape import terminal
    from harness.progress import ProgressOut

    def live() -> bool:
        reporter = config.pluginmanager.getplugin("terminalreporter")
        return bool(reporter is not None and reporter.isatty)

    def echo(line: str) -> None:
        past_capture(config, lambda r: r.write_line(f"  | {terminal(line)}"))

    def progress(text: str) -> None:
        if live():    # tqdm's redraws ("\r" and the bar) on a line of their own
            past_capture(config, lambda r: (r.ensure_newline(), r.write(text, flush=True)))
        else:
            past_capture(config, lambda r: r.write_line(f"harness: {text.rstrip()}"))
    return replace(context, echo=echo, progress_out=ProgressOut(progress, live))


def past_capture(config, write) -> None:
    """``write(terminal reporter)`` with pytest's output capture suspended."""
    capture = config.pluginmanager.getplugin("capturemanager")
    reporter = config.pluginmanager.getplugin("terminalreporter")
    if reporter is None:
        return
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        write(reporter)
