"""The lab's data: scikit-learn's digits as uint8 3x16x16 images (each pixel doubled, the grey
level repeated over three channels) with a little noise, split once (80/20, stratified).
Its statistics are declared, as the lab's pipeline normalises with them."""
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

NOISE = 0.05                    # uniform noise, a fraction of the full grey range
MEAN, STD = (0.33,) * 3, (0.40,) * 3


def digits16(data_root=None):
    bunch = load_digits()
    rng = np.random.default_rng(0)
    grey = bunch.images / 16.0 + NOISE * rng.random(bunch.images.shape)
    grey = grey.repeat(2, axis=1).repeat(2, axis=2)
    images = np.clip(grey * 255, 0, 255).astype(np.uint8)[:, None].repeat(3, axis=1)
    labels = bunch.target.astype(np.int64)
    train, test = train_test_split(np.arange(len(labels)), test_size=0.2, random_state=0,
                                   stratify=labels)
    return {"train": (images[train], labels[train]), "test": (images[test], labels[test]),
            "num_classes": 10, "mean": MEAN, "std": STD}


def tensors(split):
    """``(x, y)`` of a split as the lab's scripts feed the model: normalised float tensors."""
    import torch

    images, labels = split
    x = torch.from_numpy(images).float() / 255
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std, torch.from_numpy(labels)
