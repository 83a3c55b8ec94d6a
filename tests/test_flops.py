"""dgmbench.flops: MAC counts against hand-computed values, and the utilisation arithmetic."""

from __future__ import annotations

import pytest
import torch

from dgmbench.flops import ForwardWork, count_forward_macs, inception_forward_work, peak_tflops, utilisation


def test_conv_and_linear_macs_match_hand_counts():
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, kernel_size=3, padding=1),  # 8 x 16 x 16 outputs, 3 * 9 MACs each
        torch.nn.Conv2d(8, 8, kernel_size=3, stride=2, padding=1, groups=4),  # 8 x 8 x 8 outputs, 2 * 9 each
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 8 * 8, 10),  # 10 outputs, 512 each
    )
    work = count_forward_macs(net, torch.zeros(5, 3, 16, 16))
    conv = 8 * 16 * 16 * 3 * 9 + 8 * 8 * 8 * 2 * 9
    assert work.conv_macs_per_item == conv
    assert work.linear_macs_per_item == 10 * 512
    assert work.macs_per_item == conv + 5120
    assert work.layers == 3
    assert work.gflop_per_item == pytest.approx(2 * (conv + 5120) / 1e9)


def test_count_is_per_item_and_hooks_are_removed():
    net = torch.nn.Linear(4, 3)
    one = count_forward_macs(net, torch.zeros(1, 4))
    seven = count_forward_macs(net, torch.zeros(7, 4))
    assert one.macs_per_item == seven.macs_per_item == 12
    assert not net._forward_hooks
    with pytest.raises(ValueError, match="batch"):
        count_forward_macs(net, torch.zeros(0, 4))


@pytest.mark.slow
def test_inception_is_the_published_5_71_gmacs():
    """torchvision's model card gives Inception-v3 5.71 GFLOPS (multiply-adds) at 299 x 299; torch-fidelity's
    FID network has the same 94 convolutions."""
    work = inception_forward_work()
    assert work.layers == 94
    assert work.macs_per_item == pytest.approx(5.711e9, rel=1e-3)
    assert work.linear_macs_per_item == 0


def test_utilisation_arithmetic_and_peak_lookup():
    work = ForwardWork(macs_per_item=5e9, conv_macs_per_item=5e9, linear_macs_per_item=0, layers=1)
    u = utilisation(10_000, work, "NVIDIA H100 80GB HBM3", "bf16")
    assert u["achieved_tflops"] == pytest.approx(100.0)  # 1e4 images/s x 1e10 FLOP
    assert u["peak_tflops"] == pytest.approx(989.4)
    assert u["fraction_of_peak"] == pytest.approx(100.0 / 989.4)
    assert peak_tflops("NVIDIA H200", "tf32") == pytest.approx(494.7)
    none = utilisation(10, work, "cpu", "fp32")
    assert none["peak_tflops"] is None and none["fraction_of_peak"] is None
