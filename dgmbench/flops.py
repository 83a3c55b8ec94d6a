"""Arithmetic work of a network's forward pass, and how close a measured throughput comes to the hardware.

Convention: a multiply-accumulate (MAC) is 2 floating-point operations (FLOP). Papers and
model cards often say "GFLOPs" for what is really GMACs: torchvision's Inception-v3 card says
5.71 GFLOPS, which is 5.71 GMACs, 11.4 GFLOP. Only convolutions and linear layers are counted
(hooks on ``nn.Conv2d``/``nn.Conv1d``/``nn.Linear``); batch norm, activations, pooling and the
input resize add well under 1% for Inception and are left out, so the counts are a slight
undercount and a utilisation computed from them a slight underestimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

# Dense peak TFLOP/s (no structured sparsity) from the vendors' data sheets, by the marketing name that
# torch.cuda.get_device_name() contains. fp32 = plain FP32 (CUDA cores), tf32/bf16/fp16 = tensor cores.
PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "H100 80GB HBM3": {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4},  # H100 SXM5
    "H100 PCIe": {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0, "fp16": 756.0},
    "H100 NVL": {"fp32": 60.0, "tf32": 417.5, "bf16": 835.0, "fp16": 835.0},
    "H200": {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4},  # same SM count and clocks as H100 SXM5
    "A100": {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0},
}


@dataclass
class ForwardWork:
    """MACs of one forward pass per input item, split by layer type; ``layers``: hooked layer calls."""

    macs_per_item: float
    conv_macs_per_item: float
    linear_macs_per_item: float
    layers: int

    @property
    def gflop_per_item(self) -> float:
        """GFLOP (2 per MAC) per item."""
        return 2.0 * self.macs_per_item / 1e9


def count_forward_macs(net: torch.nn.Module, example: torch.Tensor) -> ForwardWork:
    """MACs of ``net(example)`` per item of the batch ``example``, from hooks on conv and linear layers.

    A convolution costs (output elements) x (in_channels / groups) x (kernel volume) MACs; a
    linear layer (output elements) x in_features. Biases are not counted.
    """
    if example.ndim == 0 or example.shape[0] < 1:
        raise ValueError("example must be a batch of at least one item")
    totals = {"conv": 0, "linear": 0, "layers": 0}

    def conv_hook(mod: torch.nn.Module, _inp, out: torch.Tensor) -> None:
        k = 1
        for s in mod.kernel_size:
            k *= int(s)
        totals["conv"] += out.numel() * (mod.in_channels // mod.groups) * k
        totals["layers"] += 1

    def linear_hook(mod: torch.nn.Module, _inp, out: torch.Tensor) -> None:
        totals["linear"] += out.numel() * mod.in_features
        totals["layers"] += 1

    handles = []
    for m in net.modules():
        if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, torch.nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    try:
        with torch.inference_mode():
            net(example)
    finally:
        for h in handles:
            h.remove()
    n = example.shape[0]
    return ForwardWork(macs_per_item=(totals["conv"] + totals["linear"]) / n, conv_macs_per_item=totals["conv"] / n,
                       linear_macs_per_item=totals["linear"] / n, layers=totals["layers"])


@lru_cache(maxsize=1)
def inception_forward_work() -> ForwardWork:
    """MACs per image of torch-fidelity's FID Inception-v3 up to the 2048-d pool features (299 x 299 after
    its internal resize): 5.711 G, in 94 convolutions.

    Built without weights (the count does not depend on their values). The 2048 -> 1008 logits
    product (2.1 M MACs, 0.04%) is left out: torch-fidelity computes it with a matrix product,
    not a hooked layer.
    """
    from .features.inception import _torch_fidelity_skeleton

    net = _torch_fidelity_skeleton(["2048"]).eval()
    x = torch.zeros(1, 3, 299, 299, dtype=torch.uint8)
    return count_forward_macs(net, x)


def peak_tflops(device_name: str, precision: str) -> float | None:
    """The data-sheet dense peak (TFLOP/s) of a GPU for ``precision`` ('fp32', 'tf32', 'bf16', 'fp16'), or None."""
    for key, peaks in PEAK_TFLOPS.items():
        if key in device_name:
            return peaks.get(precision)
    return None


def utilisation(items_per_s: float, work: ForwardWork, device_name: str, precision: str) -> dict[str, float | None]:
    """Achieved TFLOP/s of a measured throughput and its fraction of the device's peak (None when unknown)."""
    achieved = items_per_s * 2.0 * work.macs_per_item / 1e12
    peak = peak_tflops(device_name, precision)
    return {"achieved_tflops": achieved, "peak_tflops": peak, "fraction_of_peak": None if not peak else achieved / peak}
