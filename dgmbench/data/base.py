"""The object every dataset loader returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class DataSplit:
    """One split of a dataset.

    ``data`` is float32 in [0, 1] with shape (N, C, H, W) for images, or float32 (N, 2)
    for 2-D toy data. ``labels`` is int64 (N,) or None. For Gaussian-mixture toys,
    ``modes`` is (K, 2) and ``mode_std`` the per-axis std, for the mode-coverage metric.
    """

    name: str
    split: str
    data: torch.Tensor
    labels: torch.Tensor | None = None
    class_names: list[str] | None = None
    modes: torch.Tensor | None = None
    mode_std: float | None = None
    meta: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """'image' for (N, C, H, W) data, 'points' for (N, D)."""
        return "image" if self.data.ndim == 4 else "points"

    @property
    def data_shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape[1:])

    @property
    def num_classes(self) -> int | None:
        return len(self.class_names) if self.class_names else None

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def subset(self, n: int | None, seed: int | None = None) -> DataSplit:
        """First ``n`` items (or a seeded random subset when ``seed`` is given)."""
        if n is None or n >= len(self):
            return self
        if seed is None:
            idx = torch.arange(n)
        else:
            g = torch.Generator().manual_seed(seed)
            idx = torch.randperm(len(self), generator=g)[:n]
        return DataSplit(
            self.name, self.split, self.data[idx],
            None if self.labels is None else self.labels[idx],
            self.class_names, self.modes, self.mode_std, dict(self.meta),
        )
