"""scikit-learn's bundled 8x8 digits (1,797 images): the embedded default, no download."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from harness.data.registry import Dataset, Split, register_dataset

SPLIT_SEED = 0
TEST_FRACTION = 0.2


@register_dataset("digits")
def load_digits_dataset(data_root: Optional[Path] = None, download: bool = False) -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # (N, 1, 8, 8)
    labels = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(images, labels, test_size=TEST_FRACTION,
                                              random_state=SPLIT_SEED, stratify=labels)
    train = Split(torch.from_numpy(x_tr), torch.from_numpy(y_tr))
    mean = float(train.images.float().mean() / 255)
    std = float(train.images.float().std() / 255)
    return Dataset(name="digits", num_classes=10, train=train,
                   test=Split(torch.from_numpy(x_te), torch.from_numpy(y_te)),
                   mean=(mean,), std=(std,), flip=False,
                   source=f"sklearn.datasets.load_digits, stratified split seed {SPLIT_SEED}, "
                          f"test fraction {TEST_FRACTION}")
