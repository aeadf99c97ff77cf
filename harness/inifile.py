"""The project's pytest configuration file, found as pytest finds it, for the commands that run
outside pytest (``harness log``): from a folder upwards, the first ``pytest.ini``,
``.pytest.ini``, ``pyproject.toml`` holding ``[tool.pytest.ini_options]``, ``tox.ini`` holding
``[pytest]`` or ``setup.cfg`` holding ``[tool:pytest]`` (in that order within a folder). Only the
harness settings are read from it; a file that cannot be parsed is one line naming it."""
from __future__ import annotations

import configparser
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

try:                                   # Python 3.11+
    import tomllib
except ImportError:                    # pragma: no cover - Python 3.10 (pytest needs tomli there)
    import tomli as tomllib            # type: ignore[no-redef]

MAX_CONFIG_BYTES = 1 << 20             # a config file larger than this is no config file
_INI_SECTIONS = {"pytest.ini": "pytest", ".pytest.ini": "pytest", "tox.ini": "pytest",
                 "setup.cfg": "tool:pytest"}
CANDIDATES = ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")


class IniError(ValueError):
    """The configuration file cannot be read; the message names it."""


@dataclass(frozen=True)
class IniFile:
    path: Path
    values: dict = field(default_factory=dict)   # key -> a string or a list of strings

    def lines(self, key: str) -> tuple:
        """A line-list setting (pytest's ``linelist``): a TOML list, or one entry per line."""
        value = self.values.get(key)
        if value is None:
            return ()
        items = value if isinstance(value, list) else str(value).splitlines()
        return tuple(str(item).strip() for item in items if str(item).strip())


def find(start: Path) -> Optional[IniFile]:
    """The configuration file pytest would use when started in ``start``; None when none."""
    start = Path(start).resolve()
    for folder in (start, *start.parents):
        for name in CANDIDATES:
            path = folder / name
            if path.is_file():
                values = _read(path)
                if values is not None:
                    return IniFile(path, values)
    return None


def _read(path: Path) -> Optional[dict]:
    """The file's pytest section, or None when it has none (pytest.ini always counts)."""
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise IniError(f"{path}: over {MAX_CONFIG_BYTES >> 20} MiB; not a configuration file")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise IniError(f"{path}: cannot be read ({exc})") from None
    if path.name == "pyproject.toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise IniError(f"{path}: not valid TOML ({exc})") from None
        section = data.get("tool", {}).get("pytest", {}).get("ini_options")
        return dict(section) if isinstance(section, dict) else None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text, str(path))
    except configparser.Error as exc:
        raise IniError(f"{path}: not a valid ini file ({str(exc).splitlines()[0]})") from None
    section = _INI_SECTIONS[path.name]
    if parser.has_section(section):
        return dict(parser.items(section))
    return {} if path.name in ("pytest.ini", ".pytest.ini") else None


def log_patterns(start: Path):
    """The ``harness_log_patterns`` the project declares (found from ``start`` upwards), as
    :class:`~harness.logs.declared.LogPatterns`; None when it declares none. A LogError names
    the file and the entry that is wrong."""
    from harness.logs.declared import LogPatterns
    from harness.logs.source import LogError

    try:
        ini = find(start)
    except IniError as exc:
        raise LogError(str(exc)) from None
    lines = ini.lines("harness_log_patterns") if ini is not None else ()
    if not lines:
        return None
    return LogPatterns.from_lines(lines, f"harness_log_patterns in {ini.path}")
