"""Which globals a refused pickle would import, named without running or importing any of them.

torch's weights-only loader names the global it refuses when the pickle spells it with a GLOBAL
opcode (:func:`refused_global` reads that from torch's own message). Protocol-4 pickles
(FRAME, STACK_GLOBAL) stop it before any global. For those, :func:`scan_globals` walks the
pickle's opcodes with :mod:`pickletools` (which only parses) and keeps a model of the unpickling
stack and memo, so a STACK_GLOBAL is named by the strings it really pops (memoised ones
included), never by the last strings the file happens to spell. :func:`unsafe_globals` asks
torch which of those globals its weights-only loader does not allow, through the public
``torch.serialization.get_unsafe_globals_in_checkpoint`` (torch >= 2.5) on a small probe
checkpoint that lists them.

Reads are bounded: only the ``data.pkl`` member of a torch zip file, streamed, at most
:data:`MAX_SCAN_BYTES`; the stack and memo models are capped too.
"""
from __future__ import annotations

import io
import pickletools
import re
import zipfile
from dataclasses import dataclass, field
from typing import BinaryIO, Iterable, Optional

import torch

MAX_SCAN_BYTES = 16 << 20      # of one file's pickles: a 10,000-tensor state dict needs ~2 MB
MAX_PICKLES = 8                # a legacy torch file holds five consecutive pickles
MAX_STACK = 1 << 20            # stack entries modelled
MAX_MEMO = 1 << 17             # memo entries modelled; later ones count as unknown strings

_REFUSALS = (re.compile(r"Unsupported global: GLOBAL (.+?) was not an allowed global"),
             re.compile(r"Trying to load unsupported GLOBAL (.+?) whose module"))
_STRINGS = frozenset(("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE",
                      "SHORT_BINSTRING", "BINSTRING", "STRING"))
_PUTS = frozenset(("PUT", "BINPUT", "LONG_BINPUT"))
_GETS = frozenset(("GET", "BINGET", "LONG_BINGET"))
_MARK = object()        # a MARK on the modelled stack
_DROPPED = object()     # a memo entry past MAX_MEMO: a string the scan did not keep
# Older torch without the public API: prefixes its loader allows.
_SAFE_FALLBACK = ("torch.", "collections.OrderedDict", "builtins.set", "builtins.bytearray",
                  "_codecs.encode", "builtins.slice", "builtins.bytes")


class _OverLimit(Exception):
    """The scan reached one of its caps."""


@dataclass
class Scan:
    """What a scan found: ``(module, name)`` of each global in file order (once each)."""

    globals: list = field(default_factory=list)
    computed: int = 0               # STACK_GLOBALs of strings built while loading
    unresolved: int = 0             # STACK_GLOBALs of memo strings past the scan's memo cap
    stopped: Optional[str] = None   # why the scan ended before the end of the pickles

    @property
    def names(self) -> list:
        return [f"{module}.{name}" for module, name in self.globals]


def refused_global(message: str) -> Optional[str]:
    """The global torch's weights-only loader says it refused, from its error message."""
    for pattern in _REFUSALS:
        match = pattern.search(message)
        if match:
            name = match.group(1)
            return name if "." in name else f"builtins.{name}"   # torch drops "builtins."
    return None


def scan_globals(handle: BinaryIO, is_zip: bool) -> Scan:
    """The globals of a torch zip file's ``data.pkl`` or of a legacy file's pickles."""
    scan = Scan()
    handle.seek(0)
    if not is_zip:
        _scan_stream(_Limited(handle, MAX_SCAN_BYTES), scan)
        return scan
    with zipfile.ZipFile(handle) as archive:
        member = _data_pkl(archive)
        if member is None:
            scan.stopped = "the archive holds no data.pkl"
            return scan
        with archive.open(member) as stream:
            _scan_stream(_Limited(stream, MAX_SCAN_BYTES), scan)
    return scan


def _data_pkl(archive: zipfile.ZipFile) -> Optional[zipfile.ZipInfo]:
    """torch's layout: ``<archive name>/data.pkl`` (the first such member, as torch reads)."""
    for info in archive.infolist():
        parts = info.filename.split("/")
        if len(parts) == 2 and parts[1] == "data.pkl":
            return info
    return None


class _Limited:
    """``read``/``readline`` of a stream that refuse to go past ``limit`` bytes in all."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self.stream, self.limit, self.left = stream, limit, limit

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0 or n > self.left:
            raise _OverLimit(f"read its limit of {self.limit >> 20} MiB")
        data = self.stream.read(n)
        self.left -= len(data)
        return data

    def readline(self) -> bytes:
        line = self.stream.readline(self.left + 1)
        if len(line) > self.left:
            raise _OverLimit(f"read its limit of {self.limit >> 20} MiB")
        self.left -= len(line)
        return line


def pickles_fit(handle: BinaryIO, limit: int, count: int) -> bool:
    """Whether the first ``count`` consecutive pickles at the start of the file end within
    ``limit`` bytes (a legacy torch file: five pickles, then raw storage bytes). Anything that
    is not a pickle ends the walk: torch's loader reports that itself."""
    handle.seek(0)
    stream = _Limited(handle, limit)
    try:
        for _ in range(count):
            for _opcode in pickletools.genops(stream):   # ends after the pickle's STOP
                pass
    except _OverLimit:
        return False
    except (ValueError, EOFError, OverflowError):
        return True
    return True


def _scan_stream(stream: _Limited, scan: Scan) -> None:
    machine = _Machine(scan)
    try:
        for _ in range(MAX_PICKLES):
            if not machine.run(stream):
                return
    except _OverLimit as exc:
        scan.stopped = f"the scan {exc}"


class _Machine:
    """The unpickling stack and memo, modelled: strings are kept, everything else is None."""

    def __init__(self, scan: Scan) -> None:
        self.scan = scan
        self.stack: list = []
        self.memo: dict = {}
        self.memo_full = False

    def run(self, stream: _Limited) -> bool:
        """One pickle; False when the stream holds no further pickle."""
        self.stack, self.memo, self.memo_full = [], {}, False
        try:
            for opcode, arg, _ in pickletools.genops(stream):
                if opcode.name == "STOP":
                    return True
                self._step(opcode, arg)
        except (ValueError, EOFError, OverflowError):  # no (further) pickle: raw bytes follow
            return False
        return False

    def _step(self, opcode, arg) -> None:
        name = opcode.name
        if name in _PUTS:
            self._remember(arg)
        elif name == "MEMOIZE":
            self._remember(len(self.memo))
        elif name in _GETS:
            self._push(self.memo.get(arg, _DROPPED if self.memo_full else None))
        elif name == "DUP":
            self._push(self.stack[-1] if self.stack else None)
        else:
            self._apply(opcode, arg)

    def _apply(self, opcode, arg) -> None:
        before, after = opcode.stack_before, opcode.stack_after
        if pickletools.markobject in before:
            self._pop_mark()
            popped = self._pop(before.index(pickletools.markobject))
        else:
            popped = self._pop(len(before))
        pushed = [None] * len(after)
        if opcode.name in _STRINGS:
            pushed = [str(arg)]
        elif opcode.name in ("GLOBAL", "INST"):
            module, _, attr = str(arg).partition(" ")
            self._found(module, attr)
        elif opcode.name == "STACK_GLOBAL":
            self._stack_global(popped)
        elif opcode.name == "MARK":
            pushed = [_MARK]
        for value in pushed:
            self._push(value)

    def _stack_global(self, popped: list) -> None:
        module, attr = ([None, None] + popped)[-2:]
        if isinstance(module, str) and isinstance(attr, str):
            self._found(module, attr)
        elif module is _DROPPED or attr is _DROPPED:
            self.scan.unresolved += 1
        else:
            self.scan.computed += 1

    def _found(self, module: str, attr: str) -> None:
        if (module, attr) not in self.scan.globals:
            self.scan.globals.append((module, attr))

    def _remember(self, index) -> None:
        if len(self.memo) >= MAX_MEMO:
            self.memo_full = True
            return
        self.memo[index] = self.stack[-1] if self.stack else None

    def _push(self, value) -> None:
        if len(self.stack) >= MAX_STACK:
            raise _OverLimit(f"modelled a stack of {MAX_STACK} entries")
        self.stack.append(value)

    def _pop(self, n: int) -> list:
        if n <= 0:
            return []
        popped = self.stack[-n:]
        del self.stack[-n:]
        return popped

    def _pop_mark(self) -> None:
        while self.stack:
            if self.stack.pop() is _MARK:
                return


def unsafe_globals(pairs: Iterable[tuple]) -> list:
    """``module.name`` of the globals torch's weights-only loader does not allow, in order."""
    pairs = list(pairs)
    if not pairs:
        return []
    check = getattr(torch.serialization, "get_unsafe_globals_in_checkpoint", None)
    if check is None:
        return _unsafe_by_allow_list(pairs)
    lines = [_global_line(m, n) for m, n in pairs]
    probe = [line for line in lines if line is not None]
    flagged = set(check(io.BytesIO(_probe_checkpoint(probe)))) if probe else set()
    return [f"{m}.{n}" for (m, n), line in zip(pairs, lines)
            if line is None or f"{m}.{n}" in flagged]


def _global_line(module: str, name: str) -> Optional[bytes]:
    """A GLOBAL opcode for the probe; None for names no GLOBAL can spell (never allowed)."""
    if "\n" in module or "\n" in name:
        return None
    try:
        return b"c" + module.encode("utf-8") + b"\n" + name.encode("utf-8") + b"\n"
    except UnicodeEncodeError:
        return None


def _probe_checkpoint(lines: list) -> bytes:
    """A torch zip checkpoint whose pickle is a tuple of these globals (never loaded: torch's
    check only disassembles it)."""
    body = b"\x80\x02(" + b"".join(lines) + b"t."
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("probe/data.pkl", body)
        archive.writestr("probe/byteorder", "little")
        archive.writestr("probe/version", "3\n")
    return buffer.getvalue()


def _unsafe_by_allow_list(pairs: list) -> list:
    """torch < 2.5: its loader's allow-list (a private function there), else safe prefixes."""
    names = [f"{m}.{n}" for m, n in pairs]
    try:
        from torch._weights_only_unpickler import _get_allowed_globals
        allowed = set(_get_allowed_globals())
        return [n for n in names if n not in allowed]
    except (ImportError, AttributeError, TypeError):
        return [n for n in names if not n.startswith(_SAFE_FALLBACK)]
