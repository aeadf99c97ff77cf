"""The bars a watched run is judged against, from the same places as a pytest session's: the
bundled suites' bars (suites/profiles.py), the ``HARNESS_BARS`` of suite files named with
``--bars-from``, the ini file's ``harness_bars``, and ``--expect`` overrides."""
from __future__ import annotations

import importlib
from pathlib import Path

from harness.expect import ExpectationError, parse_override
from harness.suite import BarBook, parse_bar


class BarsError(ValueError):
    """A bar that cannot be read; the message names where it came from."""


def bundled_bars() -> list:
    """The bundled suites' bars (baseline and pruning), as their modules declare them."""
    try:
        profiles = importlib.import_module("harness.suites.profiles")
    except ModuleNotFoundError:           # a checkout on sys.path: the suites folder itself
        profiles = importlib.import_module("suites.profiles")
    return [*profiles.BASELINE_BARS, *profiles.PRUNING_BARS]


def bar_book(profile: str, expect: list, suite_files: list, start: Path) -> BarBook:
    """Every bar, the ini file's found from ``start`` upwards as pytest finds it."""
    from harness.inifile import IniError, find

    try:
        overrides = tuple(parse_override(text) for text in expect)
        ini = find(start)
        lines = ini.lines("harness_bars") if ini is not None else ()
        config = tuple(parse_bar(line) for line in lines)
        book = BarBook(profile, overrides, config)
        book.add(bundled_bars(), "the bundled suites")
        for file in suite_files:
            book.add(_suite_bars(Path(file)), f"--bars-from {file}")
    except (ExpectationError, IniError) as exc:
        raise BarsError(str(exc)) from None
    _check_overrides(book)
    return book


def _check_overrides(book: BarBook) -> None:
    from harness.options import PROFILES

    known = {i for name in PROFILES for i in book.ids(name)}
    for verdict_id in book.overrides:
        if verdict_id not in known:
            raise BarsError(f"--expect {verdict_id!r}: no bar with this id in any profile; known "
                            f"ids include {', '.join(sorted(known)[:6])}, ...")


def _suite_bars(path: Path) -> list:
    """The ``HARNESS_BARS`` of a suite file, imported as pytest imports it."""
    from harness.imports import import_as_pytest

    if not path.is_file():
        raise BarsError(f"--bars-from {path}: no such file; pass a suite module that declares "
                        f"HARNESS_BARS")
    module = import_as_pytest(path.resolve())
    bars = getattr(module, "HARNESS_BARS", None)
    if not bars:
        raise BarsError(f"--bars-from {path}: the module declares no HARNESS_BARS")
    return list(bars)
