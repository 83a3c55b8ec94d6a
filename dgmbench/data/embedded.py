"""Embedded datasets that need no download: scikit-learn's 8x8 digits."""

from __future__ import annotations

import numpy as np
import torch

from .base import DataSplit

DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0
DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def load_digits(split: str = "train") -> DataSplit:
    """scikit-learn's 1,797 8x8 digits (values 0..16) as (N, 1, 8, 8) floats in [0, 1].

    The split is fixed: a stratified 80/20 split with seed 0 (1,437 train, 360 test).
    Pixel values are 0..16, so x = v / 16; they are not 8-bit data, and bits/dim on
    digits is computed on the 17-level grid quantised to 8 bits (round(255 v / 16)).
    """
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_load_digits()
    images = bunch.images.astype(np.float32) / 16.0
    # quantise to the 8-bit grid so the 8-bit likelihood conventions hold exactly
    images = np.round(images * 255.0) / 255.0
    labels = bunch.target.astype(np.int64)
    idx = np.arange(len(labels))
    tr, te = train_test_split(idx, test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SPLIT_SEED, stratify=labels)
    sel = {"train": np.sort(tr), "test": np.sort(te), "all": idx}[split]
    return DataSplit(
        name="digits",
        split=split,
        data=torch.from_numpy(images[sel]).unsqueeze(1).float(),
        labels=torch.from_numpy(labels[sel]),
        class_names=list(DIGIT_NAMES),
        meta={"source": "sklearn.datasets.load_digits", "levels": 17},
    )
