"""Assertions shared by the baseline families' tests."""

from __future__ import annotations

import torch


def seeded_generator(seed: int = 7) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def check_seeded_8bit_samples(model, n: int, shape: tuple[int, ...]) -> torch.Tensor:
    """``model.sample`` gives float32 [0, 1] images on the 8-bit grid, equal for equal seeds and
    different for another seed; returns the samples of seed 7."""
    s1, s2 = model.sample(n, generator=seeded_generator()), model.sample(n, generator=seeded_generator())
    assert s1.shape == (n, *shape) and s1.dtype == torch.float32
    assert torch.equal(s1, s2)
    assert 0 <= float(s1.min()) and float(s1.max()) <= 1
    assert torch.equal((s1 * 255).round() / 255, s1)  # on the 8-bit grid
    assert not torch.equal(s1, model.sample(n, generator=seeded_generator(8)))
    return s1
