import pickle

import pytest
import torch

from fixtures.cifar import build_cifar10, build_cifar100
from harness.data import DataError, load_dataset
from harness.data.batches import Augment, Batches, random_crop, random_flip
from harness.data.cifar import check_root


def test_digits_split_is_fixed_and_stratified():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert torch.equal(a.test.labels, b.test.labels) and len(a.test) == 360 and len(a.train) == 1437
    counts = torch.bincount(a.test.labels, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37
    assert a.train.images.dtype == torch.uint8 and a.train.images.shape[1:] == (1, 8, 8)


def test_cifar_fixture_loads_through_torchvision(tmp_path):
    build_cifar10(tmp_path, per_class_train=3, per_class_test=2)
    build_cifar100(tmp_path, per_class_train=1, per_class_test=1)
    c10, c100 = load_dataset("cifar10", tmp_path), load_dataset("cifar100", tmp_path)
    assert (len(c10.train), len(c10.test), c10.num_classes) == (30, 20, 10)
    assert (len(c100.train), c100.num_classes) == (100, 100)
    assert c10.train.images.shape[1:] == (3, 32, 32) and c10.flip
    assert "NOT the official release" in c10.source


def test_missing_cifar_root_says_what_to_pass(tmp_path):
    with pytest.raises(DataError, match="needs --data-root"):
        load_dataset("cifar10", None)
    assert "has no cifar-10-batches-py/" in check_root("cifar10", tmp_path)
    assert "is not a directory" in check_root("cifar10", tmp_path / "nope")


class _RunsCode:
    def __reduce__(self):
        import os
        return (os.system, ("touch SENTINEL_PATH",))


def test_code_running_pickle_in_data_root_is_refused_unrun(tmp_path):
    folder = build_cifar10(tmp_path, per_class_train=1, per_class_test=1)
    sentinel = tmp_path / "ran"
    payload = pickle.dumps(_RunsCode(), protocol=2).replace(b"SENTINEL_PATH", str(sentinel).encode())
    (folder / "data_batch_3").write_bytes(payload)
    with pytest.raises(DataError, match="would import posix.system|would import os.system"):
        load_dataset("cifar10", tmp_path)
    assert not sentinel.exists()


def test_unknown_dataset_lists_known():
    with pytest.raises(DataError, match="known: cifar10, cifar100, digits"):
        load_dataset("imagenet")


def test_crop_is_a_shifted_window_of_the_padded_image():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.uint8).reshape(2, 3, 8, 8)
    out = random_crop(x, 2, g)
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for b in range(2):
        assert any(torch.equal(out[b], padded[b, :, dy:dy + 8, dx:dx + 8])
                   for dy in range(5) for dx in range(5))


def test_augmentation_statistics():
    """Offsets uniform over the 2p+1 positions, flips at rate 1/2 (the batch-wise path the
    GPU runs is this same code)."""
    g = torch.Generator().manual_seed(1)
    n = 4000
    x = torch.zeros(n, 1, 5, 5, dtype=torch.uint8)
    x[:, :, 0, 0] = 255  # a marker: its position after the crop reveals the offset
    out = random_crop(x, 1, g)
    pos = out.reshape(n, -1).float().argmax(1)
    found = (out.reshape(n, -1).max(1).values > 0)
    # the marker at (0,0) survives for offsets (0..1, 0..1) of 3x3 = 4/9 of the crops
    assert abs(found.float().mean().item() - 4 / 9) < 0.03
    assert set(pos[found].tolist()) == {0, 1, 5, 6}
    flipped = random_flip(torch.arange(2, dtype=torch.uint8).view(1, 1, 1, 2).repeat(n, 1, 1, 1), g)
    assert abs((flipped[:, 0, 0, 0] == 1).float().mean().item() - 0.5) < 0.03


def test_batches_cover_each_sample_once_per_epoch_and_normalise():
    ds = load_dataset("digits")
    train = Batches(ds.train, ds, batch_size=100, device=torch.device("cpu"), train=True, seed=3)
    seen = torch.cat([y for _, y in train])
    assert len(seen) == 1400 == train.samples_per_epoch
    test = Batches(ds.test, ds, batch_size=100, device=torch.device("cpu"), train=False)
    xs = torch.cat([x for x, _ in test])
    assert xs.shape == (360, 1, 8, 8) and abs(xs.mean().item()) < 0.2
    resized = Batches(ds.test, ds, batch_size=50, device=torch.device("cpu"), train=False, image_size=16)
    assert next(iter(resized))[0].shape == (50, 1, 16, 16)
    assert Augment(crop_padding=0, flip=False).active is False
