"""The bundled suites as installed: the package ``harness.suites`` (the checkout's top-level
``suites/`` folder, mapped onto that name by pyproject.toml), and the pytest command line that
runs one of them from the user's project.

pytest picks its ini file and rootdir from the paths on its command line, before it knows the
harness's options, so the separate value of ``--harness-from-log PATH`` counts as such a path:
a log inside another checkout would make that checkout's ini file the session's. The command
line built here writes the harness's own options as ``--option=VALUE``, so only the current
folder (the user's project) decides the ini file and rootdir, as a plain ``pytest`` there does.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from harness.options import OPTIONS

PACKAGE = "harness.suites"


class SuitesError(ValueError):
    """No such bundled suite, or the suites are not installed (one line saying what to do)."""


def suites_folder() -> Path:
    """Where ``harness.suites`` is installed (the checkout's suites/ in an editable install)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SuitesError(f"{PACKAGE} is not installed with this harness: reinstall it "
                          f"(pip install harness, or pip install -e . in its checkout)")
    return Path(next(iter(spec.submodule_search_locations)))


def names() -> tuple[str, ...]:
    """The bundled suites: the sub-packages of ``harness.suites`` holding test modules."""
    folder = suites_folder()
    return tuple(sorted(p.name for p in folder.iterdir()
                        if (p / "__init__.py").is_file() and any(p.glob("test_*.py"))))


def _valued_flags() -> set:
    """The harness's options that take a value, by every name they may be given."""
    flags = set()
    for spec in OPTIONS:
        if spec.cli and spec.action != "store_true":
            flags.update((spec.flag, spec.short_flag) if spec.short else (spec.flag,))
    return flags


def joined(args: list[str]) -> list[str]:
    """``args`` with every harness option and its separate value written as ``--option=VALUE``."""
    flags, out, i = _valued_flags(), [], 0
    while i < len(args):
        if args[i] in flags and i + 1 < len(args):
            out.append(f"{args[i]}={args[i + 1]}")
            i += 2
        else:
            out.append(args[i])
            i += 1
    return out


def pytest_argv(name: str, args: list[str]) -> list[str]:
    """The command running bundled suite ``name`` under pytest with ``args`` (pytest's and the
    harness's options), from the current folder."""
    known = names()
    if name not in known:
        raise SuitesError(f"no bundled suite {name!r}; the bundled suites are {', '.join(known)}")
    return [sys.executable, "-m", "pytest", "--pyargs", f"{PACKAGE}.{name}", *joined(list(args))]


def borrowed_ini(args: list[str], inipath, invocation_dir: Path, positional: list[str]) -> str:
    """Why pytest's ini file came from a harness option's separate value (``--harness-from-log
    PATH`` inside another project) rather than from the current folder or a test path; "" when
    it did not. ``args``: the command line; ``positional``: the test paths pytest collected."""
    if inipath is None:
        return ""
    ini_dir, here = Path(inipath).parent.resolve(), Path(invocation_dir).resolve()
    if ini_dir == here or ini_dir in here.parents:
        return ""
    flags = _valued_flags()
    values = [(args[i], args[i + 1]) for i in range(len(args) - 1) if args[i] in flags]
    tests = [(here / p).resolve() for p in positional if (here / p).exists()]
    if any(ini_dir == t or ini_dir in t.parents for t in tests):
        return ""
    for flag, value in values:
        path = (here / value).resolve()
        if path.exists() and (ini_dir == path or ini_dir in path.parents):
            return (f"pytest took {inipath} as its ini file, from the path given to {flag} (pytest "
                    f"reads an option's separate value as a test path before it knows the "
                    f"harness's options), not this project's; write {flag}={value}, or run "
                    f"`harness suites NAME ...`, which does")
    return ""
