"""The energy-based baseline: ``p(x) = exp(-E(x)) / Z``, trained by contrastive divergence
with SGLD negatives drawn from a persistent replay buffer (Du & Mordatch 2019, IGEBM;
Grathwohl et al. 2020, JEM):

- every step takes a batch of buffer states (a fraction ``reinit_prob`` re-drawn from the
  uniform initial distribution), runs ``sgld_steps`` SGLD steps, writes them back, and
  minimises ``mean E(x_data) - mean E(x_neg) + reg_weight * mean(E(x_data)^2 + E(x_neg)^2)``;
- the buffer is a registered buffer (``replay``), so it is saved in checkpoints and a
  resumed run continues from the same negatives; ``buffer_size`` 0 has none: every chain
  starts from uniform noise (short-run, non-persistent MCMC, Nijkamp et al. 2019);
- ``sample`` runs ``sample_steps`` SGLD steps from uniform noise (or from buffer states),
  all noise drawn from the caller's generator; ``nfe_per_sample`` = 2 x steps (one forward
  and one backward pass per step).

Spaces: images live in [-1, 1] inside the model (SGLD is clamped to that box), the data
convention is [0, 1]; 2-D points are used as is, with chains started uniform on
``[-init_range, init_range]^2``.

Likelihood (``kind = "estimate"``): ``log p(x) = -E(x) - log Z`` with ``log Z`` from AIS
(:mod:`baselines.ebm.ais`), over R^D for points (the energy has a quadratic confinement
``|x|^2 / (2 prior_std^2)``) and over the box [0, 1]^D for images, where the value is the
8-bit log-probability convention of :mod:`dgmbench.units` (uniform dequantisation, one
draw). The AIS standard error of ``log Z`` is ``model.likelihood_stderr`` (nats; shared
by every sample; :mod:`dgmbench.metrics.shared_stderr` adds it to the NLL's in quadrature).
Both are estimates, never bounds: AIS's ``log Z`` is a stochastic lower bound, so the NLL
tends to be optimistic when the chains mix poorly (watch ``last_log_z.ess``). ``likelihood``
"none" (with ``no_likelihood_reason``) reports no likelihood at all, for energies AIS cannot
handle (the mnist preset's).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from dgmbench.errors import ModelError, UsageError
from dgmbench.units import dequantize

from ..base import BaselineModel, merge_config
from .ais import LogZEstimate, ais_log_z
from .nets import ConvEnergy, MLPEnergy, StridedConvEnergy
from .sgld import sgld

DEFAULTS: dict[str, Any] = {
    "arch": "auto",            # "conv" or "sconv" (strided, short-run ConvNet) for images, "mlp" for points
    "ch": 32,                  # conv width
    "hidden": 128,             # MLP width
    "layers": 3,               # MLP hidden layers
    "act": "silu",
    "spectral_norm": False,
    "energy_scale": 1.0,       # E = energy_scale * net(input_scale * x) (+ confinement)
    "input_scale": 1.0,        # MLP only: see baselines.ebm.nets.MLPEnergy
    "prior_std": 4.0,          # points: quadratic confinement of the energy (None: off, no likelihood)
    "init_range": 2.0,         # points: chains start uniform on [-r, r]^D (images: [0, 1])
    "sgld_steps": 20,          # K per training step
    "sgld_step_size": 1.0,     # x <- x - step_size * grad E + noise * N(0, I)
    "sgld_noise": 0.01,        # None: sqrt(2 step_size), the Langevin sampler of exp(-E) itself
    "sample_steps": None,      # SGLD steps of sample(); None: sgld_steps
    "sample_init": "noise",    # "noise" or "buffer"
    "buffer_size": 10000,      # 0: no replay buffer, every chain starts from noise (short-run, non-persistent)
    "reinit_prob": 0.05,
    "reg_weight": 0.1,         # alpha of the energy-magnitude regulariser
    "data_noise": 0.0,         # std of Gaussian noise added to data (internal units)
    "ais_chains": 256,
    "ais_steps": 1000,
    "ais_step_size": 0.01,
    "ais_seed": 0,
    "conditional": False,
    "likelihood": "ais",       # "ais" (AIS estimate of log Z) or "none" (no likelihood; see no_likelihood_reason)
    "no_likelihood_reason": None,  # why, when likelihood is "none" (shown in errors and docs)
}


def _check_sample_init(value: str) -> str:
    if value not in ("noise", "buffer"):
        raise UsageError(f"sample_init must be 'noise' or 'buffer', got '{value}'")
    return value


class EBM(BaselineModel):
    family = "ebm"
    likelihood_kind = "estimate"

    def __init__(self, config: dict[str, Any], data_shape: tuple[int, ...], num_classes: int | None = None):
        cfg = merge_config(config, DEFAULTS, "ebm")
        super().__init__(cfg, data_shape, None)
        if cfg["conditional"]:
            raise UsageError("the ebm family has no class-conditional variant; drop 'conditional'")
        _check_sample_init(cfg["sample_init"])
        if cfg["likelihood"] not in ("ais", "none"):
            raise UsageError(f"likelihood must be 'ais' or 'none', got '{cfg['likelihood']}'")
        if cfg["likelihood"] == "none":
            if not cfg["no_likelihood_reason"]:
                raise UsageError("likelihood 'none' needs a no_likelihood_reason (one line: why there is no estimate)")
            self.likelihood_kind = "none"  # the harness reports NLL/bpd as not available
        if not 0.0 <= float(cfg["reinit_prob"]) <= 1.0:
            raise UsageError(f"reinit_prob must lie in [0, 1], got {cfg['reinit_prob']}")
        if int(cfg["buffer_size"]) < 0:
            raise UsageError(f"buffer_size must be >= 0 (0: non-persistent short-run chains), got {cfg['buffer_size']}")
        if int(cfg["buffer_size"]) == 0 and cfg["sample_init"] == "buffer":
            raise UsageError("sample_init 'buffer' needs a replay buffer (buffer_size >= 1)")
        arch = cfg["arch"]
        if arch == "auto":
            arch = "conv" if self.is_image else "mlp"
        if arch == "conv":
            if not self.is_image:
                raise UsageError(f"arch 'conv' needs image data (C, H, W), got shape {self.data_shape}")
            self.energy_net = ConvEnergy(self.data_shape, cfg["ch"], cfg["act"], cfg["spectral_norm"],
                                         energy_scale=cfg["energy_scale"])
        elif arch == "sconv":
            if not self.is_image:
                raise UsageError(f"arch 'sconv' needs image data (C, H, W), got shape {self.data_shape}")
            self.energy_net = StridedConvEnergy(self.data_shape, cfg["ch"], cfg["act"], cfg["spectral_norm"],
                                                energy_scale=cfg["energy_scale"])
        elif arch == "mlp":
            if self.is_image:
                raise UsageError("arch 'mlp' is for 2-D points; use 'conv' for images")
            self.energy_net = MLPEnergy(math.prod(self.data_shape), cfg["hidden"], cfg["layers"], cfg["act"],
                                        cfg["spectral_norm"], cfg["prior_std"], cfg["energy_scale"],
                                        cfg["input_scale"])
        else:
            raise UsageError(f"unknown EBM arch '{arch}' (known: auto, conv, sconv, mlp)")
        self.arch = arch
        self.register_buffer("replay", self._init_states(int(cfg["buffer_size"]), None))
        self.name = f"ebm-{arch}"
        self.last_log_z: LogZEstimate | None = None
        self._log_z_key: tuple | None = None

    # --- spaces -------------------------------------------------------------------------
    @property
    def box(self) -> tuple[float, float] | None:
        """SGLD / AIS domain in internal units: [-1, 1] for images, unbounded for points."""
        return (-1.0, 1.0) if self.is_image else None

    def _init_range(self) -> float:
        return 1.0 if self.is_image else float(self.config["init_range"])

    def _init_states(self, n: int, generator: torch.Generator | None, device=None) -> torch.Tensor:
        r = self._init_range()
        dev = generator.device if generator is not None else (device or "cpu")
        u = torch.rand((n, *self.data_shape), generator=generator, device=dev)
        return (u * 2 * r - r).to(device or dev)

    def to_internal(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 - 1 if self.is_image else x

    def from_internal(self, x: torch.Tensor) -> torch.Tensor:
        return ((x + 1) / 2).clamp(0, 1) if self.is_image else x

    def energy(self, x_internal: torch.Tensor) -> torch.Tensor:
        """Energy (N,) of internal-space inputs; density proportional to exp(-E)."""
        return self.energy_net(x_internal)

    @property
    def sgld_noise(self) -> float:
        n = self.config["sgld_noise"]
        return math.sqrt(2 * float(self.config["sgld_step_size"])) if n is None else float(n)

    def langevin(self, x: torch.Tensor, steps: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """SGLD with the configured step size and noise (internal space)."""
        c = self.config
        req = [p.requires_grad for p in self.parameters()]
        self.requires_grad_(False)
        try:
            return sgld(self.energy, x, steps, float(c["sgld_step_size"]), self.sgld_noise,
                        generator=generator, clamp=self.box)
        finally:
            for p, r in zip(self.parameters(), req):
                p.requires_grad_(r)

    # --- training -------------------------------------------------------------------------
    def _negatives(self, n: int) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Buffer indices and their start states (a ``reinit_prob`` share freshly drawn; all of them,
        with no indices, when there is no buffer)."""
        dev = self.replay.device
        if self.replay.shape[0] == 0:
            return None, self._init_states(n, None, dev)
        idx = torch.randint(0, self.replay.shape[0], (n,), device=dev)
        x0 = self.replay[idx]
        fresh = torch.rand(n, device=dev) < float(self.config["reinit_prob"])
        x0 = torch.where(fresh.view(-1, *([1] * len(self.data_shape))), self._init_states(n, None, dev), x0)
        return idx, x0

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Contrastive-divergence loss on a data batch; updates the replay buffer."""
        c = self.config
        x_pos = self.to_internal(x)
        if c["data_noise"]:
            x_pos = x_pos + float(c["data_noise"]) * torch.randn_like(x_pos)
        idx, x0 = self._negatives(x.shape[0])
        x_neg = self.langevin(x0, int(c["sgld_steps"]))
        if idx is not None:
            with torch.no_grad():
                self.replay[idx] = x_neg
        e_pos, e_neg = self.energy(x_pos), self.energy(x_neg)
        cd = e_pos.mean() - e_neg.mean()
        loss = cd + float(c["reg_weight"]) * (e_pos**2 + e_neg**2).mean()
        return loss, {"cd": float(cd.detach()), "e_pos": float(e_pos.detach().mean()),
                      "e_neg": float(e_neg.detach().mean())}

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.loss(x, y)[0]

    # --- sampling -------------------------------------------------------------------------
    def configure_sampling(self, *, sample_init: str | None = None, sample_steps: int | None = None) -> EBM:
        """Settings of ``sample``: ``sample_init`` 'noise' (uniform states, the default) or 'buffer'
        (replay-buffer states, which IGEBM and JEM report samples from), ``sample_steps`` SGLD steps
        (0 with 'buffer' returns buffer states as they are). Training is unaffected. Returns self."""
        if sample_init is not None:
            if _check_sample_init(sample_init) == "buffer" and self.replay.shape[0] == 0:
                raise UsageError("sample_init 'buffer' needs a replay buffer; this EBM is non-persistent (buffer_size 0)")
            self.config["sample_init"] = sample_init
        if sample_steps is not None:
            if int(sample_steps) < 0 or (int(sample_steps) == 0 and self.sample_init == "noise"):
                raise UsageError(f"sample_steps must be >= 1 from noise (>= 0 from the buffer), got {sample_steps}")
            self.config["sample_steps"] = int(sample_steps)
        return self

    @property
    def sample_init(self) -> str:
        return str(self.config["sample_init"])

    @property
    def sample_steps(self) -> int:
        s = self.config["sample_steps"]
        return int(self.config["sgld_steps"] if s is None else s)

    @property
    def nfe_per_sample(self) -> float:
        """Network passes per sample: one forward and one backward per SGLD step."""
        return 2.0 * self.sample_steps

    def sample(self, n: int, *, generator: torch.Generator | None = None, labels: torch.Tensor | None = None,
               batch_size: int = 1000) -> torch.Tensor:
        """``sample_steps`` SGLD steps from uniform noise (or from distinct replay-buffer states while
        ``n`` <= the buffer size); CPU output in the data convention."""
        if labels is not None:
            raise UsageError("the EBM is unconditional; sample without labels")
        dev = self.device
        was_training = self.training
        self.eval()
        out = []
        order = None  # buffer indices: distinct while the buffer holds enough states
        if self.sample_init == "buffer":
            size = self.replay.shape[0]
            order = torch.randperm(size, generator=generator)[:n] if n <= size else \
                torch.randint(0, size, (n,), generator=generator)
        for s in range(0, n, batch_size):
            m = min(batch_size, n - s)
            if order is not None:
                x0 = self.replay[order[s:s + m].to(dev)]
            else:
                x0 = self._init_states(m, generator, dev)
            x = self.langevin(x0, self.sample_steps, generator)
            out.append(self.from_internal(x).float().cpu())
        self.train(was_training)
        return torch.cat(out) if out else torch.empty(0, *self.data_shape)

    # --- likelihood (AIS estimate) -----------------------------------------------------------
    def estimate_log_z(self, *, n_chains: int | None = None, n_steps: int | None = None,
                       generator: torch.Generator | None = None) -> LogZEstimate:
        """AIS estimate of log Z (nats, internal space) with its standard error."""
        c = self.config
        if not self.is_image and not c["prior_std"]:
            raise UsageError("this EBM has no quadratic confinement (prior_std None), so Z may be infinite; "
                             "set prior_std to get a likelihood estimate")
        gen = generator or torch.Generator().manual_seed(int(c["ais_seed"]))
        base_std = None if self.is_image else float(c["prior_std"])
        was_training = self.training
        self.eval()
        try:
            est = ais_log_z(self.energy, self.data_shape, n_chains=n_chains or int(c["ais_chains"]),
                            n_steps=n_steps or int(c["ais_steps"]), base_std=base_std, box=self.box,
                            step_size=float(c["ais_step_size"]), generator=gen, device=self.device)
        finally:
            self.train(was_training)
        return est

    def _params_key(self) -> tuple:
        return tuple((id(p), p._version) for p in self.parameters()) + (str(self.device),)

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor) -> tuple[torch.Tensor, str]:
        """(log p(x) in nats per sample, "estimate"); 8-bit convention for images.

        log Z is estimated once per parameter state (cached) with ``ais_chains`` chains and
        ``ais_steps`` temperatures, seeded by ``ais_seed``; see ``self.last_log_z``.
        """
        if self.config["likelihood"] == "none":
            raise ModelError(f"{self.name} reports no likelihood: {self.config['no_likelihood_reason']}")
        key = self._params_key()
        if self.last_log_z is None or self._log_z_key != key:
            self.last_log_z = self.estimate_log_z()
            self._log_z_key = key
        log_z = self.last_log_z.log_z
        dev = self.device
        if self.is_image:
            d = math.prod(self.data_shape)
            g = torch.Generator().manual_seed(int(self.config["ais_seed"]) + 1)
            y = dequantize(x.float().cpu(), generator=g).to(dev)
            # density on [0,1]^D = density on [-1,1]^D times 2^D; then to the [0,256)^D scale
            ll = -self.energy(self.to_internal(y)) - log_z + d * math.log(2.0) - d * math.log(256.0)
        else:
            ll = -self.energy(x.to(dev).float()) - log_z
        return ll.double().cpu(), "estimate"

    @property
    def no_likelihood_reason(self) -> str | None:
        """Why there is no likelihood (``likelihood`` "none"), for the harness's "not available" note."""
        return self.config["no_likelihood_reason"] if self.config["likelihood"] == "none" else None

    @property
    def likelihood_note(self) -> str | None:
        """A caveat for the NLL/bpd Records when the last AIS run's weights were degenerate."""
        est = self.last_log_z
        if est is None or not est.degenerate:
            return None
        return (f"AIS weights degenerate (ESS {est.ess:.1f} of {est.n_chains} chains): log Z is likely "
                f"underestimated and the NLL overestimated (by about {-est.bias_lognormal:.2g} nats under a "
                f"log-normal fit of the weights); its standard error {est.stderr:.2g} nats is that fit's")

    @property
    def likelihood_stderr(self) -> float | None:
        """Standard error (nats) of the last log Z estimate, shared by every sample's log p."""
        return None if self.last_log_z is None else self.last_log_z.stderr
