"""Which globals a pickle would import, read from its opcodes without running any of them.

torch's weights-only loader names the first global it refuses for protocol-2 pickles, but stops
at an unsupported opcode (e.g. FRAME in protocol 4) before it sees any global. This scan walks
the opcodes with :mod:`pickletools` (which only parses) so an unsafe file is always reported
with the global it would import or call.
"""
from __future__ import annotations

import io
import pickletools
import zipfile
from pathlib import Path
from typing import Iterator, Optional

_STRING_OPS = ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING",
               "BINSTRING", "STRING")
_SAFE_FALLBACK = ("torch.", "collections.OrderedDict", "builtins.set", "builtins.bytearray",
                  "_codecs.encode", "builtins.slice", "builtins.bytes")


def pickle_globals(path: Path) -> Iterator[str]:
    """``module.name`` of every GLOBAL / STACK_GLOBAL / INST in the file's pickles."""
    for data in _pickles(Path(path)):
        stream = io.BytesIO(data)
        while stream.tell() < len(data):
            start = stream.tell()
            yield from _one_pickle(stream)
            if stream.tell() == start:
                break


def blocked_global(path: Path) -> Optional[str]:
    allowed = _allowed()
    for name in pickle_globals(path):
        if name not in allowed and not (allowed is _SAFE_FALLBACK and name.startswith(allowed)):
            return name
    return None


def _pickles(path: Path) -> list:
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return [archive.read(n) for n in archive.namelist() if n.endswith(".pkl")]
    return [path.read_bytes()]


def _one_pickle(stream: io.BytesIO) -> Iterator[str]:
    strings: list = []
    try:
        for opcode, arg, _ in pickletools.genops(stream):
            if opcode.name in _STRING_OPS:
                strings.append(str(arg))
            elif opcode.name in ("GLOBAL", "INST"):
                yield str(arg).replace(" ", ".")
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                yield f"{strings[-2]}.{strings[-1]}"
            if opcode.name == "STOP":
                return
    except (ValueError, EOFError):
        stream.seek(0, io.SEEK_END)        # not (or no longer) a pickle: nothing more to read


def _allowed():
    try:
        from torch._weights_only_unpickler import _get_allowed_globals
        return set(_get_allowed_globals())
    except (ImportError, AttributeError, TypeError):
        return _SAFE_FALLBACK
