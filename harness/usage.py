"""Usage mistakes on the command line: :class:`CliError` (printed as one line, exit code 2) and
the ``--pattern`` lines every log-reading command takes. Kept apart from :mod:`harness.cli` so
that the subcommands' own modules (``harness.watch.cli``) need not import the CLI's table."""
from __future__ import annotations

from pathlib import Path


class CliError(Exception):
    """A usage mistake: printed as one line, exit code 2."""


def declared_patterns(given: list):
    """``--pattern`` lines, else the project's ``harness_log_patterns`` (None: neither)."""
    from harness.inifile import log_patterns
    from harness.logs.declared import LogPatterns

    if given:
        return LogPatterns.from_lines(given, "--pattern")
    return log_patterns(Path.cwd())
