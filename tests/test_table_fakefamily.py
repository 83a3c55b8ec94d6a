"""A tiny stand-in baseline family for the table/report tests (no tests in this module).

``fake``: a factorised Gaussian over pixels or points trained by maximum likelihood
through the shared trainer. Its exact log-likelihood is the continuous Gaussian density
of the uniformly dequantised data on the [0, 256)^D scale for images (as dgmbench.units
prescribes), so the metric engine can score it like any family. Config ``nan_after: k``
makes the loss NaN from step k on, to exercise the diverged-run path.
"""

from __future__ import annotations

import math

import torch

from baselines.base import BaselineModel

FAMILY = "fake"
MODULE = "test_table_fakefamily"
LIKELIHOOD_KIND = "exact"


class Gauss(BaselineModel):
    family = FAMILY
    likelihood_kind = "exact"

    def __init__(self, config, data_shape, num_classes=None):
        super().__init__(config, data_shape, num_classes)
        d = math.prod(data_shape)
        self.mu = torch.nn.Parameter(torch.full((d,), 0.5 if len(data_shape) == 3 else 0.0))
        self.log_sigma = torch.nn.Parameter(torch.zeros(d))
        self.register_buffer("steps_seen", torch.zeros((), dtype=torch.long))

    def _log_prob(self, x):
        x = x.reshape(x.shape[0], -1)
        z = (x - self.mu) / self.log_sigma.exp()
        return (-0.5 * z**2 - self.log_sigma - 0.5 * math.log(2 * math.pi)).sum(1)

    def forward(self, x, y=None):
        self.steps_seen += 1
        loss = -self._log_prob(x).mean()
        k = self.config.get("nan_after")
        if k is not None and int(self.steps_seen) > k:
            loss = loss * float("nan")
        return loss

    @torch.no_grad()
    def log_likelihood(self, x):
        if len(self.data_shape) == 3:
            d = x[0].numel()
            y = (x * 255).round() / 256 + 0.5 / 256  # dequantise at the bin centre (deterministic)
            return self._log_prob(y) - d * math.log(256.0), "exact"
        return self._log_prob(x), "exact"

    @torch.no_grad()
    def sample(self, n, *, generator=None, labels=None):
        z = torch.randn((n, self.mu.numel()), generator=generator)
        x = (self.mu + self.log_sigma.exp() * z).reshape(n, *self.data_shape)
        return x.clamp(0, 1) if len(self.data_shape) == 3 else x


def build_model(config, data_shape, num_classes=None):
    return Gauss(config, data_shape, num_classes)


_TRAIN = {"steps": 40, "batch_size": 64, "lr": 0.05, "ckpt_every": 10, "log_every": 5, "device": "cpu"}
PRESETS = {
    "digits-tiny": {"dataset": "digits", "model": {}, "train": dict(_TRAIN)},
    "digits-nan": {"dataset": "digits", "model": {"nan_after": 12}, "train": dict(_TRAIN)},
    "ring8-tiny": {"dataset": "ring8", "model": {}, "train": dict(_TRAIN)},
}


def register(monkeypatch) -> None:
    """Make ``fake`` a registered family for the rest of the test."""
    from baselines import registry

    monkeypatch.setitem(registry.FAMILIES, FAMILY, MODULE)


REGISTER_SNIPPET = (
    "import sys; sys.path.insert(0, {tests!r}); "
    "from baselines import registry; registry.FAMILIES['fake'] = 'test_table_fakefamily'; "
)
