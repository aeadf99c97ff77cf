"""External commands as runs: the user's own training script, run and judged like the engine's.

A :class:`CommandSpec` names a command (argv, working directory, environment) and where its log
and checkpoints appear. :func:`run_command` runs it as a subprocess, streams its output to the
terminal (escaped) and into the runs store (``<key>/output.log``), parses its log with the
harness's log readers (with the project's declared patterns, ``harness_log_patterns``, unless
``log_format`` names a format), and stores the record under a key made of the command and the
SHA-256 of every file it names (script, init, config), so an unchanged nightly reuses it. A
command whose log cannot be read (or holds no evaluation) is stored too, its record's
``notes["log_unread"]`` saying why (the session fails its case); a stored run whose log was read
another way is read again, not run again. A command that fails or is killed raises
:class:`CommandFailed` (exit status and last lines) and stores no record. Whatever the command
prints, the harness holds only its last lines, each cut at :data:`SHOWN_CHARS` (a line without a
line ending is read :data:`MAX_LINE_BYTES` at a time); ``output.log`` keeps the first
:data:`MAX_OUTPUT_BYTES` and then a line saying it was cut (the record's ``notes["output_cut"]``
says so too, and a cut output is not read as the log). It runs with no shell: ``argv`` reaches it
as given. The command and every process it starts are one process group
(:class:`harness.process.OwnedProcess`), ended whole at its timeout, at the end of its run (a
background process it left is ended) and when the caller is interrupted (Ctrl-C). ``env``'s
values reach the command and key the run but are written nowhere: records, reports and messages
show each name with ``<redacted>``.
"""
from __future__ import annotations

import collections
import hashlib
import json
import os
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Callable, Optional

from harness.storage import file_digest
from harness.escape import visible_controls

TAIL_LINES = 20
MAX_LINE_BYTES = 64 << 10       # read at a time: a line longer than this is stored whole, shown cut
SHOWN_CHARS = 2000              # of one line, in the tail and on the terminal
MAX_HASHED_BYTES = 2 << 30      # a named file larger than this is keyed by size and mtime
MAX_OUTPUT_BYTES = 64 << 20     # of the output kept in output.log (the head; a line says it was cut)


class CommandFailed(RuntimeError):
    """The command exited with a non-zero status or was killed; nothing was stored."""

    def __init__(self, message: str, status: int, tail: list) -> None:
        super().__init__(message)
        self.status = status
        self.tail = tail


def _tuple(value, name: str) -> tuple:
    if isinstance(value, str) or value is None:
        raise ValueError(f"CommandSpec.{name} must be a list of strings, got {value!r}")
    items = tuple(value)
    if not all(isinstance(v, str) for v in items):
        raise ValueError(f"CommandSpec.{name} must hold strings, got {items!r}")
    return items


def _inside(patterns: tuple) -> tuple:
    """``patterns`` when each is a non-empty glob relative to the working folder that does not
    climb out of it (checked here, before anything runs)."""
    for pattern in patterns:
        if not pattern or PurePosixPath(pattern).is_absolute() or PureWindowsPath(pattern).drive \
                or ".." in PurePosixPath(pattern.replace("\\", "/")).parts:
            raise ValueError(f"CommandSpec.checkpoints must hold globs relative to cwd that stay "
                             f"inside it (not absolute, no '..'), got {pattern!r}")
    return patterns


@dataclass(frozen=True)
class CommandSpec:
    """A run made by the user's own command.

    ``log``: the file (relative to ``cwd``) the command writes its training log to; None reads
    its standard output. ``checkpoints``: glob patterns (relative to ``cwd``) of the files it
    writes, listed with their digests in the record. ``inputs``: further files whose bytes key
    the run (files named in ``argv`` are hashed anyway)."""

    argv: tuple
    cwd: str = "."
    env: tuple = ()
    log: Optional[str] = None
    log_format: Optional[str] = None
    checkpoints: tuple = ()
    inputs: tuple = ()
    dataset: Optional[str] = None
    timeout: Optional[float] = None
    label: str = ""
    stop_on_fail: bool = False      # judge its log while it runs; stop it on the first failing verdict
    prune: None = field(default=None, init=False)   # the engine's pruning spec: never for commands

    def __post_init__(self) -> None:
        argv = _tuple(self.argv, "argv")
        if not argv:
            raise ValueError("CommandSpec.argv must name a command, got an empty list")
        object.__setattr__(self, "argv", argv)
        object.__setattr__(self, "checkpoints", _inside(_tuple(self.checkpoints, "checkpoints")))
        object.__setattr__(self, "inputs", _tuple(self.inputs, "inputs"))
        object.__setattr__(self, "env", _env(self.env))
        if self.stop_on_fail and self.log_format == "timm":
            raise ValueError("CommandSpec.stop_on_fail judges a log file or the command's output "
                             "as it runs; log_format 'timm' is an output folder: name the "
                             "console log it prints instead (log_format None or 'research')")
        if self.timeout is not None and not self.timeout > 0:
            raise ValueError(f"CommandSpec.timeout must be > 0 seconds, got {self.timeout!r}")

    @property
    def model(self) -> str:
        return f"command {Path(self.argv[0]).name}"

    @property
    def claims_pretrained(self) -> bool:
        return False

    def to_dict(self) -> dict:
        """The spec as records and reports show it: ``env``'s values are ``<redacted>`` (an
        API token must not reach report.html, a CI artifact); its names are kept."""
        return {**self._fields(), "env": {name: REDACTED for name, _ in self.env}}

    def _fields(self) -> dict:
        return {"argv": list(self.argv), "cwd": self.cwd, "env": dict(self.env), "log": self.log,
                "log_format": self.log_format, "checkpoints": list(self.checkpoints),
                "inputs": list(self.inputs), "dataset": self.dataset, "timeout": self.timeout,
                # only when set: the run keys of commands stored before the field stay as they were
                **({"stop_on_fail": True} if self.stop_on_fail else {})}

    def __repr__(self) -> str:   # a traceback or a parameter shown by pytest shows no env value
        shown = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"CommandSpec({shown}, label={self.label!r})"


REDACTED = "<redacted>"


def _env(env) -> tuple:
    """``CommandSpec.env`` as sorted (name, value) pairs; a ValueError naming the entry that is
    not a string pair, never showing a value."""
    pairs = tuple(tuple(pair) for pair in (env.items() if isinstance(env, dict) else env))
    for i, pair in enumerate(pairs):
        if len(pair) != 2 or not all(isinstance(x, str) for x in pair):
            name = repr(pair[0]) if pair and isinstance(pair[0], str) else f"number {i}"
            raise ValueError(f"CommandSpec.env must map strings to strings; its entry {name} "
                             f"holds {', '.join(type(x).__name__ for x in pair) or 'nothing'}")
    return tuple(sorted(pairs))


def command_key(spec: CommandSpec, base: Path) -> tuple[str, dict]:
    """The run key: the command and the digests of the files it names; and those digests."""
    from harness import __version__

    cwd = (base / spec.cwd).resolve()
    named = [a for a in spec.argv[1:] if _is_file(cwd / a)] + list(spec.inputs)
    digests = {name: _digest(cwd / name) for name in sorted(set(named))}
    if _is_file(cwd / spec.argv[0]):
        digests[spec.argv[0]] = _digest(cwd / spec.argv[0])
    payload = {"command": spec._fields(), "files": digests, "harness": __version__}   # env values key the run
    text = json.dumps(payload, sort_keys=True)
    return "cmd-" + hashlib.sha256(text.encode()).hexdigest()[:16], digests


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _digest(path: Path) -> str:
    if not path.is_file():
        raise ValueError(f"CommandSpec.inputs names {str(path)!r}, which is not a file")
    stat = path.stat()
    if stat.st_size > MAX_HASHED_BYTES:
        return f"size {stat.st_size}, mtime {stat.st_mtime_ns}"
    return file_digest(path)


@dataclass(frozen=True)
class Output:
    """What :func:`execute` kept of the command's output: its last lines (each cut at
    SHOWN_CHARS) and how many bytes it printed in all (``output.log`` keeps the first
    MAX_OUTPUT_BYTES of them)."""

    tail: list
    printed: int

    @property
    def cut(self) -> bool:
        return self.printed > MAX_OUTPUT_BYTES

    def cut_note(self) -> str:
        kept = MAX_OUTPUT_BYTES
        shown = f"{kept >> 20} MiB" if kept % (1 << 20) == 0 else f"{kept} bytes"
        return f"output.log keeps the first {shown} of the {self.printed} bytes the command printed"


def execute(spec: CommandSpec, cwd: Path, output: Path,
            echo: Optional[Callable[[str], None]] = None,
            judge: Optional[Callable[[str], Optional[str]]] = None) -> Output:
    """Run the command (its whole process group owned: see :mod:`harness.process`), its
    standard output and error streamed line by line into ``output`` (its first MAX_OUTPUT_BYTES,
    then a line saying it was cut) and to ``echo``; raise CommandFailed on a non-zero status, a
    signal or the timeout. Memory stays bounded whatever the command prints. ``judge`` (see
    :func:`harness.watch.inline.stop_rule`, passed in by the session) sees each line; when it
    gives a reason the whole group is stopped at once and CommandFailed says why."""
    from harness.process import OwnedProcess

    env = dict(os.environ, **dict(spec.env))
    if judge is not None:       # judged as it prints: Python must not hold its lines back in blocks
        env.setdefault("PYTHONUNBUFFERED", "1")
    tail: collections.deque = collections.deque(maxlen=TAIL_LINES)
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "wb") as sink:
        try:
            proc = OwnedProcess(list(spec.argv), cwd=cwd, env=env, max_line=MAX_LINE_BYTES)
        except OSError as exc:
            raise CommandFailed(f"cannot start {spec.argv[0]!r} in {cwd}: {exc.strerror or exc}",
                                127, []) from None
        with proc:
            pieces = _scrubbed(proc.lines(spec.timeout), _secrets(spec))
            printed, stopped = _pump(pieces, sink, tail, echo, judge)
        kept = Output(list(tail), printed)
        if kept.cut:
            sink.write(f"\n[harness: {kept.cut_note()}]\n".encode())
    status = proc.returncode
    if stopped:
        raise CommandFailed(f"{_shown(spec)} was stopped by the harness (stop_on_fail): {stopped}",
                            status if status else 1, kept.tail)
    if proc.timed_out:
        raise CommandFailed(f"{_shown(spec)} ran past its timeout of {spec.timeout:g} s and was "
                            f"killed", status, kept.tail)
    if status != 0:
        how = (f"was killed by signal {signal.Signals(-status).name}" if status < 0
               else f"exited with status {status}")
        raise CommandFailed(f"{_shown(spec)} {how}", status, kept.tail)
    return kept


MIN_SECRET_CHARS = 4     # shorter env values ("1", "on") are settings, not secrets, and too common


def _secrets(spec: CommandSpec) -> tuple:
    """The env values the command's printed output must not carry into output.log, the terminal
    or a report: each value of MIN_SECRET_CHARS or more, longest first."""
    values = {value.encode() for _, value in spec.env if len(value) >= MIN_SECRET_CHARS}
    return tuple(sorted(values, key=len, reverse=True))


def _scrubbed(pieces, secrets: tuple):
    """The output's pieces with every env value the command prints replaced by ``<redacted>``
    (a value split across two pieces of one 64 KiB-long line is not caught)."""
    for raw in pieces:
        for value in secrets:
            raw = raw.replace(value, REDACTED.encode())
        yield raw


def _pump(pieces, sink, tail, echo, judge=None) -> tuple:
    """Copy the output's pieces into ``sink`` (up to MAX_OUTPUT_BYTES), their lines into
    ``tail``, ``echo`` and ``judge``; the number of bytes printed in all, and why ``judge``
    stopped the command ("" when it did not)."""
    continued = False       # the previous piece ended inside a long line
    printed = 0
    for raw in pieces:
        if printed < MAX_OUTPUT_BYTES:
            sink.write(raw[:MAX_OUTPUT_BYTES - printed])
            sink.flush()
        printed += len(raw)
        if not continued:
            text = _line(raw)
            tail.append(text)
            if echo is not None:
                echo(text)
            stopped = judge(text) if judge is not None else None
            if stopped:
                return printed, stopped
        continued = not raw.endswith(b"\n")
    return printed, ""


def _line(raw: bytes) -> str:
    """A line of output as shown: decoded, its line ending dropped, cut at SHOWN_CHARS."""
    body = raw.rstrip(b"\r\n")
    text = body[:SHOWN_CHARS * 4].decode("utf-8", errors="replace")
    cut = (len(text) > SHOWN_CHARS or len(body) > SHOWN_CHARS * 4
           or len(raw) >= MAX_LINE_BYTES and not raw.endswith(b"\n"))
    return text[:SHOWN_CHARS] + " [line cut]" if cut else text


def _shown(spec: CommandSpec) -> str:
    """The command in one line of a message (a ``-c`` script's line breaks shown as ``\\x0a``)."""
    text = " ".join(spec.argv)
    return f"command `{visible_controls(text[:200])}`"


def get_or_run_command(spec: CommandSpec, context, base: Path):
    """The record of ``spec``'s run: from the store when its command and named files are
    unchanged, else by running it (see the module doc). ``base`` resolves ``spec.cwd``. The log
    is read with ``context.log_patterns`` (the project's ``harness_log_patterns``) unless
    ``spec.log_format`` names a format; a stored run whose log was read another way (or not
    read) is read again, not run again."""
    from harness.lock import exclusive

    key, digests = command_key(spec, base)
    store = context.store
    patterns = getattr(context, "log_patterns", None)
    cwd = (base / spec.cwd).resolve()
    output = store.path(key) / "output.log"
    with exclusive(store.lock_path(key), f"command run {key} ({spec.label or spec.argv[0]})"):
        if context.rerun:
            store.clear(key)
        stored = store.complete(key)
        if stored is not None:
            read_with = stored.notes.get("log_read_with")   # absent: stored before it was kept
            if read_with is not None and read_with != _reading(spec, patterns):
                log = _kept(store.path(key)) if spec.log else output
                stored = _with_run(_read_log(spec, key, log if log.exists() else cwd / spec.log,
                                             patterns, stored.notes.get("output_cut")),
                                   stored.notes, stored.environment)
                store.save_record(key, stored)
            stored.notes["reused"] = True
            return stored
        started = time.time()
        ran = execute(spec, cwd, output, context.echo, _stop_rule(spec, context, cwd, patterns))
        record = _read_log(spec, key, _log_to_read(spec, cwd, store.path(key), output), patterns,
                           ran.cut_note() if ran.cut else None)
        record = _with_run(record, _run_notes(spec, cwd, output, digests, time.time() - started,
                                              ran), None)
        store.save_record(key, record)
        return record


def _stop_rule(spec: CommandSpec, context, cwd: Path, patterns):
    """With ``stop_on_fail``: the watcher that judges the command's log as it runs."""
    if not spec.stop_on_fail:
        return None
    rule = getattr(context, "stop_rule", None)
    if rule is None:
        raise ValueError("CommandSpec.stop_on_fail needs a watcher to judge the command as it runs; "
                         "run it in a pytest session (or `harness watch -- COMMAND`)")
    return rule(spec, getattr(context, "bars", None), patterns, cwd)


def _kept(folder: Path) -> Path:
    return folder / "command.log"


def _log_to_read(spec: CommandSpec, cwd: Path, folder: Path, output: Path) -> Path:
    """The command's output, or the log file it wrote, copied into the store beside its output
    (a stored run is read again from what it wrote, whatever the working folder holds later); a
    log folder (timm's) or a file too large to be read is read where it is."""
    from harness.logs.bounds import MAX_LOG_BYTES

    if not spec.log:
        return output
    source = cwd / spec.log
    try:
        if not source.is_file() or source.stat().st_size > MAX_LOG_BYTES:
            return source
        shutil.copyfile(source, _kept(folder))
    except OSError:        # not copied: it is read (and its read fails, saying why) where it is
        return source
    return _kept(folder)


def _reading(spec: CommandSpec, patterns) -> dict:
    """How the command's log is read (stored with its record): the format it names, or the
    declared patterns that read it."""
    declared = patterns.signature() if patterns is not None and spec.log_format is None else None
    return {"format": spec.log_format, "declared": declared}


def _read_log(spec: CommandSpec, key: str, log: Path, patterns, cut: Optional[str] = None):
    """The log read into a record; a log that cannot be read, or holds no evaluation, gives a
    record without epochs whose ``notes["log_unread"]`` says why (the session fails the case).
    An output that was cut (``cut`` says how) is not read as the log: its head would be judged
    as if it were the whole run."""
    from dataclasses import replace

    from harness.logs import LogError, parse_log
    from harness.record import RunRecord

    try:
        if cut and not spec.log:
            raise LogError(f"{log}: not read as the log: {cut}; write the training log to a file "
                           f"and name it in CommandSpec.log")
        record = parse_log(log, spec.log_format, option="CommandSpec.log_format", patterns=patterns)
    except LogError as exc:
        record = RunRecord(run_id=key, source="command", dataset=spec.dataset or "", num_classes=0,
                           model=spec.model, complete=False,
                           notes={"log_path": str(log), "log_unread": str(exc)})
    else:
        record = replace(record, run_id=key)
        if not any(s.epochs for s in record.states):
            how = record.source.removeprefix("log:")
            record.notes["log_unread"] = (
                f"{log}: no evaluation read as the {how} format ({record.notes.get('lines_understood')} "
                f"of {record.notes.get('lines_total')} lines understood)")
    record.notes["log_read_with"] = _reading(spec, patterns)
    return record


def _run_notes(spec: CommandSpec, cwd: Path, output: Path, digests: dict, seconds: float,
               ran: Output) -> dict:
    files = sorted({p for pattern in spec.checkpoints for p in cwd.glob(pattern) if p.is_file()})
    outside = [p for p in files if not p.resolve().is_relative_to(cwd)]
    notes = {"command": spec.to_dict(), "command_files": digests,
             "command_seconds": round(seconds, 3), "output_log": str(output),
             "last_output_lines": list(ran.tail),
             "checkpoints": {str(p.relative_to(cwd)): _digest(p) for p in files if p not in outside}}
    if outside:
        notes["checkpoints_outside"] = [f"{p.relative_to(cwd)}: a link to a file outside cwd, not read"
                                        for p in outside]
    if ran.cut:
        notes["output_cut"] = ran.cut_note()
    return notes


_RUN_NOTES = ("command", "command_files", "command_seconds", "output_log", "last_output_lines",
              "checkpoints", "checkpoints_outside", "output_cut")


def _with_run(record, run_notes: dict, environment: Optional[dict]):
    """``record`` (its log read) as the command's run: the run's notes (what ran, its files, its
    time) and the environment it ran in (this machine's when None)."""
    from dataclasses import replace

    from harness.environment import environment as this_machine

    spec = run_notes["command"]
    notes = dict(record.notes, reused=False, **{k: run_notes[k] for k in _RUN_NOTES if k in run_notes})
    return replace(record, dataset=record.dataset or (spec.get("dataset") or ""), spec={"command": spec},
                   environment=environment if environment is not None else this_machine(),
                   notes=notes)
