"""fixtures/cifar.py: the gratings style hides the class from the mean colour (so a model has to
learn spatial features) and keeps it under the CIFAR recipes' horizontal flip; the default
stripes style is unchanged for its callers."""
import json

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from fixtures.cifar import GRATING_ANGLES, GRATING_CIFAR10, build_cifar10, build_cifar100
from harness.data import load_dataset


def _mean_colour_accuracy(dataset) -> float:
    """Test accuracy of a linear classifier on each image's mean colour alone."""
    def features(split):
        return split.images.float().mean(dim=(2, 3)).numpy(), split.labels.numpy()

    x, y = features(dataset.train)
    tx, ty = features(dataset.test)
    return LogisticRegression(max_iter=2000).fit(x, y).score(tx, ty)


def test_gratings_hide_the_class_from_the_mean_colour(tmp_path):
    build_cifar10(tmp_path / "stripes", per_class_train=40, per_class_test=20)
    build_cifar10(tmp_path / "gratings", per_class_train=40, per_class_test=20, style="gratings")
    stripes = load_dataset("cifar10", tmp_path / "stripes")
    gratings = load_dataset("cifar10", tmp_path / "gratings")
    assert (len(gratings.train), len(gratings.test)) == (400, 200)
    assert _mean_colour_accuracy(stripes) > 0.9          # the colour gives the class away
    assert _mean_colour_accuracy(gratings) < 0.25         # chance is 0.10


def _wave_angles(images: torch.Tensor) -> torch.Tensor:
    """Per image, the direction (degrees in [0, 180)) of its strongest spatial frequency."""
    grey = images.float().mean(1)
    power = torch.fft.fft2(grey - grey.mean(dim=(1, 2), keepdim=True)).abs()
    flat = power.flatten(1).argmax(1)
    fy, fx = flat // 32, flat % 32
    fy, fx = torch.where(fy > 16, fy - 32, fy).float(), torch.where(fx > 16, fx - 32, fx).float()
    return torch.rad2deg(torch.atan2(fy, fx)) % 180


def test_a_class_is_an_unsigned_orientation_so_a_flip_keeps_it(tmp_path):
    """A class's gratings lean either way from the vertical at its angle: the mirror image of a
    class member is another member, so the recipes' flip augmentation keeps every label true."""
    build_cifar10(tmp_path, per_class_train=40, per_class_test=1, style="gratings")
    data = load_dataset("cifar10", tmp_path)
    angles = _wave_angles(data.train.images)
    for k in range(10):
        signed = angles[data.train.labels == k]
        expected = float(np.rad2deg(GRATING_ANGLES[GRATING_CIFAR10[k] % 10]))
        unsigned = torch.minimum(signed, 180 - signed)
        assert (unsigned - expected).abs().max() < 8, (k, expected, unsigned)
        if 0 < expected < 90:
            assert (signed < 90).any() and (signed > 90).any()


def test_cifar100_gratings_contain_the_cifar10_patterns(tmp_path):
    build_cifar100(tmp_path, per_class_train=2, per_class_test=1, style="gratings")
    data = load_dataset("cifar100", tmp_path)
    assert data.num_classes == 100 and len(data.train) == 200
    assert sorted(set(GRATING_CIFAR10.tolist())) == sorted(GRATING_CIFAR10.tolist())
    assert np.all((GRATING_CIFAR10 >= 0) & (GRATING_CIFAR10 < 100))


def test_fixture_epoch0_measures_a_random_init_through_the_nightly_recipe(tmp_path, capsys):
    from bench.fixture_epoch0 import main
    out = tmp_path / "epoch0.json"
    assert main(["--per-class-train", "2", "--per-class-test", "1", "--batch-size", "8", "--device", "cpu",
                 "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["patterns"] == GRATING_CIFAR10.tolist() and result["train_images"] == 20
    assert result["steps"] == 2 and result["epoch0_test_n"] == 10
    assert result["spec"]["model"] == "vit_small_patch16_224" and result["spec"]["recipe"]["epochs"] == 7
    assert main(["--patterns", "1,2,3", "--per-class-train", "1"]) == 2
    assert "patterns must be 10 CIFAR-100 classes in [0, 100), got [1, 2, 3]" in capsys.readouterr().err
