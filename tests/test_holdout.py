"""The validation split: the last N training images in the dataset's order, held out whole."""
import pytest
import torch

from fixtures.cifar import build_cifar10
from harness.data import DataError, load_dataset
from harness.data.holdout import hold_out


def test_the_last_images_of_the_training_split_are_held_out_in_order():
    full = load_dataset("digits")
    train, held = hold_out(full, 143)
    n = len(full.train)
    assert len(train.train) == n - 143 and len(held) == 143
    assert torch.equal(train.train.images, full.train.images[:n - 143])
    assert torch.equal(held.images, full.train.images[n - 143:])
    assert torch.equal(held.labels, full.train.labels[n - 143:])
    assert train.test is full.test and (train.mean, train.std) == (full.mean, full.std)
    assert "the last 143 training images held out (1294 left to train on)" in train.source


def test_cifar_holds_out_the_tail_of_its_training_files(tmp_path):
    """As the research group's cifar10_dataloaders: images 0..N-k train, the last k validate."""
    build_cifar10(tmp_path, per_class_train=6, per_class_test=2)
    full = load_dataset("cifar10", tmp_path)
    train, held = hold_out(full, 10)
    assert torch.equal(held.images, full.train.images[-10:]) and len(train.train) == 50


@pytest.mark.parametrize("count", [0, 1437, 5000])
def test_a_count_the_split_cannot_give_is_one_line(count):
    with pytest.raises(DataError, match=rf"RunSpec.validation must be between 1 and 1436 \(the 1437 "
                                        rf"training images of digits\), got {count}"):
        hold_out(load_dataset("digits"), count)
