"""Map data to the space the diffusion / score models work in, and back.

- images in [0, 1] (N, C, H, W): z = 2 x - 1 in [-1, 1] (8-bit values k/255 land on 2k/255 - 1);
  back: x = clamp((z + 1) / 2, 0, 1).
- points (N, D): z = scale * x (``data_scale`` in the model config, default 1);
  log p_x(x) = log p_z(z) + D log(scale).
"""

from __future__ import annotations

import math

import torch

from dgmbench.errors import DataError


class DataSpace:
    def __init__(self, data_shape: tuple[int, ...], scale: float = 1.0):
        self.data_shape = tuple(data_shape)
        self.is_image = len(self.data_shape) == 3
        self.scale = 2.0 if self.is_image else float(scale)
        self.dims = math.prod(self.data_shape)

    def check(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.data_shape:
            raise DataError(f"expected data of shape (N, {', '.join(map(str, self.data_shape))}), got {tuple(x.shape)}")
        if not torch.is_floating_point(x):
            raise DataError(f"expected float data ({'[0, 1] images' if self.is_image else 'points'}), got {x.dtype}")
        return x

    def to_model(self, x: torch.Tensor) -> torch.Tensor:
        return 2.0 * x - 1.0 if self.is_image else self.scale * x

    def from_model(self, z: torch.Tensor) -> torch.Tensor:
        return ((z + 1.0) / 2.0).clamp(0.0, 1.0) if self.is_image else z / self.scale

    @property
    def log_det(self) -> float:
        """log |dz/dx| summed over dimensions (nats): add to log p_z to get log p_x."""
        return self.dims * math.log(self.scale)
