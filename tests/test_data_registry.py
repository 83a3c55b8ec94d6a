"""Dataset registry: names and suggestions, the embedded digits, and the 2-D toys."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dgmbench.data import dataset_info, get_dataset, list_datasets, prepare_dataset
from dgmbench.data.toys import TOY_NAMES
from dgmbench.errors import EXIT_USAGE, UsageError


@pytest.mark.parametrize("typo, closest", [("mnsit", "'mnist'"), ("cifar", "'cifar10'"), ("fashion_mnist", "'fashion-mnist'"), ("rings8", "'ring8'")])
def test_unknown_dataset_suggests_closest(typo, closest):
    with pytest.raises(UsageError) as exc:
        get_dataset(typo)
    assert f"unknown dataset '{typo}'; did you mean {closest}" in str(exc.value)
    assert exc.value.exit_code == EXIT_USAGE


def test_unknown_split():
    with pytest.raises(UsageError, match="unknown split of digits 'val'"):
        get_dataset("digits", "val")


def test_options_checked_and_download_options_ignored_elsewhere(tmp_path):
    # download options are accepted (and ignored) by embedded, toy and custom sources
    assert len(get_dataset("ring8", "test", n=10, data_dir=str(tmp_path), mirror="http://x")) == 10
    assert len(get_dataset("digits", "test", data_dir=str(tmp_path))) == 360
    with pytest.raises(UsageError, match="dataset 'ring8' does not take option\\(s\\) resize; it takes seed, n, std"):
        get_dataset("ring8", resize=4)
    with pytest.raises(UsageError, match="dataset 'mnist' does not take option\\(s\\) seed"):
        get_dataset("mnist", "test", seed=0)
    with pytest.raises(UsageError, match="dataset 'digits' does not take option\\(s\\) n; it takes no options"):
        get_dataset("digits", n=5)
    with pytest.raises(UsageError, match="does not take option\\(s\\) bogus"):
        prepare_dataset("cifar10", bogus=1)


def test_registry_lists_every_dataset():
    names = {d.name for d in list_datasets()}
    assert {"digits", "mnist", "fashion-mnist", "cifar10", *TOY_NAMES} <= names
    assert dataset_info("cifar10").shape == (3, 32, 32) and dataset_info("mnist").downloads
    assert prepare_dataset("digits") == []  # embedded: nothing to download


def test_digits_embedded_split():
    from sklearn.datasets import load_digits

    tr, te = get_dataset("digits", "train"), get_dataset("digits", "test")
    assert (len(tr), len(te)) == (1437, 360) and tr.data.shape[1:] == (1, 8, 8)
    # every train/test image is one of sklearn's images (values v / 16, on the 8-bit grid)
    ref = load_digits().images.reshape(-1, 64) / 16.0
    both = torch.cat([tr.data, te.data]).reshape(-1, 64).double().numpy()
    assert np.allclose(np.sort(both, axis=0), np.sort(ref, axis=0), atol=0.5 / 255)
    assert torch.equal((tr.data * 255).round() / 255, tr.data)
    # stratified: each class's test share is close to 20%
    share = torch.bincount(te.labels, minlength=10).double() / (
        torch.bincount(tr.labels, minlength=10) + torch.bincount(te.labels, minlength=10)
    )
    assert float((share - 0.2).abs().max()) < 0.02
    assert torch.equal(get_dataset("digits", "test").data, te.data)  # fixed split


def test_toys_deterministic_shapes():
    for name in TOY_NAMES:
        a, b = get_dataset(name, "train", n=500, seed=3), get_dataset(name, "train", n=500, seed=3)
        assert a.data.shape == (500, 2) and a.data.dtype == torch.float32 and torch.isfinite(a.data).all()
        assert torch.equal(a.data, b.data)
        assert not torch.equal(a.data, get_dataset(name, "train", n=500, seed=4).data)
        assert not torch.equal(a.data, get_dataset(name, "test", n=500, seed=3).data)


@pytest.mark.parametrize("name, std", [("ring8", 0.01), ("grid25", 0.05)])
def test_mixture_modes_and_std(name, std):
    ds = get_dataset(name, "train", n=20000, seed=0)
    if name == "ring8":
        ref = [(math.cos(2 * math.pi * i / 8), math.sin(2 * math.pi * i / 8)) for i in range(8)]
    else:
        ref = [(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)]
    assert sorted(map(tuple, ds.modes.double().round(decimals=6).tolist())) == sorted(
        tuple(round(v, 6) + 0.0 for v in m) for m in ref
    )
    assert ds.mode_std == std
    resid = ds.data - ds.modes[ds.labels]
    assert abs(float(resid.std()) / std - 1) < 0.03  # empirical std of 40,000 values
    counts = torch.bincount(ds.labels, minlength=len(ref)).double()
    assert float(counts.min()) > 0.8 * 20000 / len(ref)  # every mode populated about evenly
