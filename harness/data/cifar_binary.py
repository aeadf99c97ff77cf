"""CIFAR-10's official binary version (``cifar-10-batches-bin/``): read, write and verify.

Each record is one label byte, then the image's red, green and blue planes (1024 bytes each,
row-major): 3073 bytes. ``data_batch_1.bin`` ... ``data_batch_5.bin`` hold 10,000 training
records each, ``test_batch.bin`` the 10,000 test records; :data:`OFFICIAL_MD5` are the per-file
MD5s of the release (cifar-10-binary.tar.gz). No pickle is involved, so reading a data root from
elsewhere runs no code.

A *subset* root (written by :mod:`harness.data.npm_cifar` for machines that carry only a few
tens of MB) holds the whole ``test_batch.bin`` and ``harness_subset.json`` naming the training
files it holds instead of all five: some of the official ``data_batch_k.bin`` (each still checked
against its official MD5), or ``train_subset.bin`` with the first N training images of each
class of the official files.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from harness.storage import file_digest

FOLDER = "cifar-10-batches-bin"
RECORD = 3073
TRAIN_FILES = tuple(f"data_batch_{k}.bin" for k in range(1, 6))
TEST_FILE = "test_batch.bin"
SUBSET_MANIFEST = "harness_subset.json"
SUBSET_FILE = "train_subset.bin"
OFFICIAL_MD5 = {
    "data_batch_1.bin": "5dd7e06a14cb22eb9f671a540d1b7c25",
    "data_batch_2.bin": "5ea93a67294ea407fff1d09f752e9692",
    "data_batch_3.bin": "942cd6a4bcdd0dd3c604fbe906cb4421",
    "data_batch_4.bin": "ae636b3ba5c66a11e91e8cb52e771fcb",
    "data_batch_5.bin": "53f37980c15c3d472c316c40844f3f0d",
    "test_batch.bin": "803d5f7f4d78ea53de84dbe85f74fb6d",
}
LABEL_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck")
MAX_FILE_BYTES = 50_000 * RECORD   # the whole training set; nothing larger is read


class BinaryError(ValueError):
    """A binary CIFAR-10 folder that cannot be read; the message says what to do."""


def md5(path: Path) -> str:
    return file_digest(path, "md5")


def encode(images: np.ndarray, labels: np.ndarray) -> bytes:
    """Records for uint8 images (N, 3, 32, 32) and labels in [0, 10)."""
    n = len(labels)
    records = np.empty((n, RECORD), dtype=np.uint8)
    records[:, 0] = labels
    records[:, 1:] = images.reshape(n, 3072)
    return records.tobytes()


def decode(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 3, 32, 32), labels int64) of one binary batch file."""
    if path.is_symlink() or not path.is_file():
        raise BinaryError(f"{path}: missing or not a plain file; rebuild the data root with "
                          f"`harness fetch-cifar10`")
    size = path.stat().st_size
    if size % RECORD or size > MAX_FILE_BYTES:
        raise BinaryError(f"{path}: {size} bytes is not a whole number of 3073-byte CIFAR-10 "
                          f"records (at most 50,000); rebuild it with `harness fetch-cifar10`")
    records = np.fromfile(path, dtype=np.uint8).reshape(-1, RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.size and int(labels.max()) > 9:
        raise BinaryError(f"{path}: label byte {int(labels.max())} outside 0-9; not CIFAR-10")
    return np.ascontiguousarray(records[:, 1:].reshape(-1, 3, 32, 32)), labels


@dataclass(frozen=True)
class Release:
    """What a binary folder holds and how it compares with the official release."""

    train_files: tuple      # the training files read
    official: dict          # file name -> True (official MD5), False (differs); subset file absent
    subset: Optional[dict]  # the subset manifest, when the folder is one

    def describe(self) -> str:
        bad = ", ".join(n for n, ok in self.official.items() if not ok)
        checked = (f"NOT the official release: md5 differs for {bad}" if bad else
                   f"official md5 for {', '.join(self.official)}")
        if self.subset is None:
            return f"binary version, {checked}"
        if SUBSET_FILE in self.train_files:
            return (f"binary version, subset root: {checked}; training images: the first "
                    f"{self.subset.get('train_per_class')} of each class, as {SUBSET_MANIFEST} records")
        return f"binary version, subset root of {len(self.train_files)} training files: {checked}"


def _manifest(folder: Path) -> Optional[dict]:
    manifest = folder / SUBSET_MANIFEST
    if not manifest.is_file() or manifest.is_symlink():
        return None
    if manifest.stat().st_size > 1 << 16:
        raise BinaryError(f"{manifest}: over 64 KiB; not a manifest harness wrote")
    try:
        subset = json.loads(manifest.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BinaryError(f"{manifest}: not JSON ({exc}); rebuild the root with "
                          f"`harness fetch-cifar10`") from None
    files = subset.get("train_files") if isinstance(subset, dict) else None
    if not isinstance(files, list) or not files or not set(files) <= {*TRAIN_FILES, SUBSET_FILE}:
        raise BinaryError(f"{manifest}: 'train_files' must list some of {', '.join(TRAIN_FILES)} "
                          f"or {SUBSET_FILE}, got {files!r}; rebuild the root with `harness fetch-cifar10`")
    return subset


def release(folder: Path) -> Release:
    """Which files ``folder`` holds and whether each is the official one (MD5)."""
    subset = _manifest(folder)
    train_files = tuple(subset["train_files"]) if subset is not None else TRAIN_FILES
    missing = [n for n in (*train_files, TEST_FILE) if not (folder / n).is_file()]
    if missing:
        raise BinaryError(f"{folder}: {', '.join(missing)} missing; rebuild the data root with "
                          f"`harness fetch-cifar10 {folder.parent}`")
    official = {n: md5(folder / n) == OFFICIAL_MD5[n] for n in (*train_files, TEST_FILE) if n in OFFICIAL_MD5}
    return Release(train_files, official, subset)


def read(folder: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], Release]:
    """((train images, labels), (test images, labels), release) of a binary folder."""
    found = release(folder)
    parts = [decode(folder / n) for n in found.train_files]
    train = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return train, decode(folder / TEST_FILE), found
