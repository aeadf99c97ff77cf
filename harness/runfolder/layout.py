"""Which files of a run folder belong to which state, and which layout the folder has.

Layouts are data (:mod:`harness.runfolder.declaration`): a file name pattern with ``{k}`` per
role (``checkpoint``: a state's last save; ``best``: its best-validation epoch) and a reader of
its log and claim. Built in:

- ``research`` (the preset used when nothing is declared): the research group's
  ``main_imp_fillback.py`` save folder: ``{k}checkpoint.pth.tar`` (the last epoch of state k, or
  its best-validation epoch while the state runs) and ``{k}model_SA_best.pth.tar`` (the
  best-validation epoch), at least one of them, plus a stdout log (a ``.log``, ``.txt`` or
  ``.out`` file in the folder whose lines are the research format) unless one is given; the
  init file is the one the log's arguments name;
- ``store``: a run of the harness's own runs store (``reports/runs/<key>``): ``state<k>.json``,
  ``state<k>.safetensors``, ``state<k>.masks.safetensors`` and ``record.json``.

Any other lab's folder is read by the names its declaration gives (``state{k}_checkpoint.pth.tar``);
two files that name one state (``3`` and ``03``, or digits of another script) are refused.

Only the folder's own entries are listed (no recursion); links are not followed (a link is
listed as skipped), and the listing is bounded. A file the log or record names inside the folder
(an init or rewind file; a store state, which may be another run's of the same store) is refused
when a link leads to it or its path climbs out (:func:`file_problem`).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from harness.logs.bounds import clip

MAX_ENTRIES = 100_000
MAX_STATE = 10_000
MAX_LOGS_TRIED = 8          # candidate logs of a folder read before giving up (each may be large)
SHOWN = 3                   # problems or names a one-line error quotes
MAX_SKIPPED = 50            # entries not read that a folder's notes list by name
LOG_SUFFIXES = (".log", ".txt", ".out")
_STORE = re.compile(r"^state(\d{1,5})\.json$")


class RunFolderError(RuntimeError):
    """A folder that is no run folder, or a file of it that cannot be read; one line."""


@dataclass(frozen=True)
class StateFiles:
    index: int
    checkpoint: Optional[Path] = None    # the state's last save ({k}checkpoint / state<k>.safetensors)
    best: Optional[Path] = None          # {k}model_SA_best.pth.tar
    unread: tuple = ()                   # the state's files not read (a link), with why

    @property
    def final(self) -> Optional[Path]:
        return self.checkpoint or self.best


@dataclass
class FolderLayout:
    folder: Path
    kind: str                               # "research", "declared", "store" or "log"
    states: dict = field(default_factory=dict)      # index -> StateFiles
    logs: list = field(default_factory=list)        # candidate log files (research, declared)
    skipped: list = field(default_factory=list)     # entries not read, with why
    spec: object = None                     # the RunLayout whose names were read (not the store)
    links: dict = field(default_factory=dict)       # name -> path of each link (not followed)
    unjudged: dict = field(default_factory=dict)    # state -> why it has no file to judge

    def indices(self) -> list[int]:
        return sorted(self.states)


def _entries(folder: Path, skipped: list, links: Optional[dict] = None) -> list[Path]:
    """The folder's regular files, read one entry at a time (no list of every name is made);
    each link (not followed) is listed in ``skipped`` and kept in ``links``."""
    found = []
    with os.scandir(folder) as listing:
        for count, entry in enumerate(listing):
            if count >= MAX_ENTRIES:
                skipped.append(f"more than {MAX_ENTRIES:,} entries: the rest not listed")
                break
            if entry.is_symlink():
                skipped.append(f"{entry.name}: a link, not followed")
                if links is not None:
                    links[entry.name] = folder / entry.name
            elif entry.is_file(follow_symlinks=False):
                found.append(folder / entry.name)
    return found


def folder_files(folder: Path) -> list[Path]:
    """The folder's own regular files (bounded; links not followed)."""
    return _entries(Path(folder), [])


def find_layout(folder: Path, declared=None) -> FolderLayout:
    """The layout of ``folder``: ``declared`` (a :class:`~harness.runfolder.declaration.RunLayout`)
    when given, else a run of the harness's store or the built-in research layout (raises
    :class:`RunFolderError` when the folder holds none of its files)."""
    from harness.runfolder.declaration import DEFAULT, PRESETS

    folder = Path(folder)
    if not folder.is_dir():
        raise RunFolderError(f"{folder}: not a folder; pass the folder a pruning run saved into "
                             f"({{k}}checkpoint.pth.tar files, or the files its declared layout "
                             f"names) or a run of the harness's store (reports/runs/<key>)")
    skipped: list = []
    links: dict = {}
    entries = _entries(folder, skipped, links)
    names = {e.name: e for e in entries}
    if declared is None and ("record.json" in names or any(_STORE.match(n) for n in names)):
        return _store_layout(folder, names, _listed(skipped))
    spec = declared or PRESETS[DEFAULT]
    unjudged: dict = {}
    states = _linked(spec, _states(spec, names, skipped), links, skipped, unjudged)
    logs = sorted(p for n, p in names.items() if n.lower().endswith(LOG_SUFFIXES))
    if not states:
        wanted = " or ".join(filter(None, (spec.checkpoint, spec.best)))
        how = (f"declared in {spec.source}" if declared is not None else
               "the research group's layout; another lab's layout is declared with "
               "harness_run_layout / --harness-run-layout, e.g. checkpoint: state{k}_checkpoint.pth.tar")
        store = " or state<k>.json" if declared is None else ""
        raise RunFolderError(f"{folder}: no {wanted}{store} in it ({how}); pass the folder a "
                             f"pruning run saved into")
    return FolderLayout(folder, spec.reader, states, logs, _listed(skipped), spec, links, unjudged)


def _listed(skipped: list) -> list:
    """The first :data:`MAX_SKIPPED` entries not read, and how many more (a folder of 30,000
    links makes no 30,000-line note)."""
    more = len(skipped) - MAX_SKIPPED
    return skipped[:MAX_SKIPPED] + ([f"... and {more:,} more entries not read"] if more > 0 else [])


def _states(spec, names: dict, skipped: list) -> dict:
    """State number -> its files, by the layout's name patterns; two files naming one state of
    one role (``3`` and ``03``, or digits of another script) are refused, naming both."""
    found: dict = {}
    for role, pattern in spec.roles().items():
        seen: dict = {}
        for name in sorted(names):
            match = pattern.fullmatch(name)
            if not match:
                continue
            index = int(match.group("k"))      # any script's digits: a twin is refused below
            if index > MAX_STATE:
                skipped.append(f"{name}: state number over {MAX_STATE:,}, not read")
                continue
            if index in seen:
                raise RunFolderError(f"{names[name].parent}: {seen[index]} and {name} both name "
                                     f"state {index} ({role} {getattr(spec, role)}); keep one, "
                                     f"or declare a {role} name that tells them apart")
            if _ascii_index(match) is None:
                seen[index] = name
                skipped.append(f"{name}: its state number {match.group('k')!r} is not ASCII "
                               f"digits 0-9; not read")
                continue
            seen[index] = name
            files = found.get(index, StateFiles(index))
            found[index] = StateFiles(index, **{**_fields(files), role: names[name]})
    return found


def _fields(files: StateFiles) -> dict:
    return {"checkpoint": files.checkpoint, "best": files.best, "unread": files.unread}


def _linked(spec, states: dict, links: dict, skipped: list, unjudged: dict) -> dict:
    """``states`` with each state file that is a link (not followed) said on its state: which
    file the state is judged from instead, or (in ``unjudged``) that it has none."""
    for role, pattern in spec.roles().items():
        for name in sorted(links):
            match = pattern.fullmatch(name)
            index = _ascii_index(match)
            if index is None or index > MAX_STATE:
                continue
            files = states.get(index, StateFiles(index))
            judged = files.final.name if files.final else None
            why = (f"{name}: a link (to {clip(os.readlink(links[name]))}), not followed; state "
                   f"{index} " + (f"is judged from {judged}" if judged else "has no file to judge"))
            if files.final is None:
                skipped.append(f"state {index} not judged: {why}")
                unjudged[index] = why
                continue
            states[index] = StateFiles(index, **{**_fields(files), "unread": files.unread + (why,)})
    return states


def _ascii_index(match) -> Optional[int]:
    """The state number of a name ``match`` (None: no match, or digits other than ASCII 0-9)."""
    text = match.group("k") if match else ""
    return int(text) if text and all("0" <= c <= "9" for c in text) else None


def _store_layout(folder: Path, names: dict, skipped: list) -> FolderLayout:
    states = {}
    for name, path in names.items():
        match = _STORE.match(name)
        if match and int(match.group(1)) <= MAX_STATE:
            index = int(match.group(1))
            weights = names.get(f"state{index}.safetensors")
            states[index] = StateFiles(index, checkpoint=weights)
    return FolderLayout(folder, "store", states, [], skipped)


def run_cwd(folder: Path, save_dir: Optional[str]) -> Path:
    """Where the run's program ran: ``folder`` minus its ``save_dir`` tail (the research script
    joins ``save_dir`` and the init path to its working directory)."""
    folder = Path(folder).resolve()
    parts = [p for p in Path(save_dir or "").parts if p not in ("", ".")]
    if parts and not Path(save_dir).is_absolute() and list(folder.parts[-len(parts):]) == parts:
        return Path(*folder.parts[:-len(parts)])
    return folder.parent


def init_candidates(folder: Path, init: Optional[str], save_dir: Optional[str]) -> list[Path]:
    """Where the init file a log names may be: under the run's working directory, then under the
    folder itself. A log's path is a claim only: an absolute one, or one climbing with ``..``, is
    looked for by its name in the folder alone (a log cannot make the harness read a file
    elsewhere on this machine)."""
    if not init:
        return []
    path = Path(init)
    if path.is_absolute() or ".." in path.parts:
        return [Path(folder) / path.name]
    return [run_cwd(folder, save_dir) / path, Path(folder) / path, Path(folder) / path.name]


def file_problem(folder: Path, path: Path, what: str = "the run folder") -> Optional[str]:
    """Why ``path``, a file that a run's log or record names inside ``folder`` (``what``), is not
    read: it lies outside the folder, or a link on the way to it would be followed; None: it may
    be read."""
    folder, path = Path(folder), Path(path)
    try:
        parts = path.relative_to(folder).parts
    except ValueError:
        parts = ("..",)
    if ".." in parts:
        return f"{path}: outside {what} {folder}; not read"
    at = folder
    for part in parts:
        at = at / part
        if at.is_symlink():
            return (f"{at}: a link (to {clip(os.readlink(at))}), not followed: the files of a run "
                    f"folder are read from the folder itself")
    return None


def some(items: list, what: str = "more") -> str:
    """The first :data:`SHOWN` of ``items`` joined by '; ', and how many more: one bounded line
    whatever a folder of junk holds."""
    shown = "; ".join(clip(str(i), 300) for i in items[:SHOWN])
    return shown + (f"; and {len(items) - SHOWN:,} {what}" if len(items) > SHOWN else "")


def tried_logs(candidates: list, problems: list) -> list:
    """The candidate logs to read: the first :data:`MAX_LOGS_TRIED`; the rest said in
    ``problems`` (a folder of thousands of .log files is not read file by file)."""
    if len(candidates) > MAX_LOGS_TRIED:
        problems.append(f"{len(candidates):,} .log/.txt/.out files in the folder: only the first "
                        f"{MAX_LOGS_TRIED} by name read ({', '.join(p.name for p in candidates[:SHOWN])}, ...)")
    return list(candidates[:MAX_LOGS_TRIED])
