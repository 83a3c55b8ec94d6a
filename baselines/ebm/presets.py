"""EBM presets (``python -m baselines train ebm --preset NAME``).

The toy recipe samples "cold" (IGEBM/JEM style: the SGLD noise is below sqrt(2 step), so
chains concentrate at the energy minima); the digits-jem, digits-tiny, mnist-gpu and cifar10 recipes follow
JEM (Grathwohl et al. 2020: 20 SGLD steps of size 1 with noise 0.01 on [-1, 1] images, a
10,000-state buffer re-initialised at 5%, data noise 0.03). ``digits-jem`` (the ``digits``
preset until 2026-12-02: FID 224 +- 134 over 3 seeds) samples with 200 SGLD steps from noise.
``digits`` and ``mnist`` are the short-run, non-persistent recipe of Nijkamp et al. 2019
(below; measured in baselines/README.md#ebm).
"""

from __future__ import annotations

# No likelihood on the 2-D mixtures: contrastive divergence with chains that never cross between
# the separated modes gives no gradient to each mode's energy level, so exp(-E) / Z puts arbitrary
# masses on the modes (and grid25 grew a minimum far outside the data); AIS measures that
# faithfully (on a box-confined variant it agrees with grid quadrature), which made the NLL differ by hundreds of nats
# between seeds. Measured in baselines/README.md#ebm. ``likelihood: "ais"`` still estimates it.
_TOY_NO_LIKELIHOOD = (
    "the 2-D energy's mode weights are not learned: its SGLD chains never cross between the separated modes, so "
    "contrastive divergence leaves each mode's energy level free and exp(-E)/Z puts arbitrary masses on them (AIS "
    "gave 28 to 349 nats on grid25 over 3 seeds); see baselines/README.md#ebm")
_RING = {"arch": "mlp", "hidden": 128, "layers": 3, "act": "silu", "input_scale": 10.0, "energy_scale": 10.0,
         "prior_std": 4.0, "init_range": 2.0, "sgld_steps": 20, "sgld_step_size": 1e-4, "sgld_noise": 0.005,
         "sample_steps": 100, "buffer_size": 5000, "reinit_prob": 0.05, "reg_weight": 1e-4,
         "ais_chains": 256, "ais_steps": 2000, "ais_step_size": 1e-4,
         "likelihood": "none", "no_likelihood_reason": _TOY_NO_LIKELIHOOD}
_TOY_TRAIN = {"batch_size": 128, "lr": 2e-3, "betas": (0.0, 0.999), "grad_clip": None, "log_every": 10,
              "ckpt_every": 500, "device": "cpu"}
_CONV = {"arch": "conv", "act": "silu", "sgld_steps": 20, "sgld_step_size": 1.0, "sgld_noise": 0.01,
         "buffer_size": 10000, "reinit_prob": 0.05, "reg_weight": 0.1, "data_noise": 0.03,
         "ais_chains": 64, "ais_steps": 500, "ais_step_size": 1e-3}
_IMG_TRAIN = {"batch_size": 64, "lr": 1e-4, "betas": (0.0, 0.999), "grad_clip": None, "log_every": 25,
              "ckpt_every": 500}

# Short-run, non-persistent MCMC (Nijkamp et al. 2019, "Learning non-convergent non-persistent
# short-run MCMC toward energy-based model"): chains start from uniform noise on [-1, 1]^D and run
# K steps; no replay buffer, no energy regulariser, data noise 0.03, Adam (0.9, 0.999). Their
# sampler is x <- x + grad f(x) + 0.01 xi (step 1, noise 0.01) with f = -E, a Langevin chain at
# temperature T = 0.01^2 / 2 = 5e-5. Written here at T = 1: E = net / T (energy_scale 2e4),
# step h = 5e-5 and noise sqrt(2 h) = 0.01, the same chain (Adam is invariant to the loss's
# scale), so the sampler is exactly the (unadjusted, short-run, box-clamped) Langevin dynamics
# of the density exp(-E) / Z whose AIS estimate is the likelihood column. The ConvNet is theirs
# at width 8 (8-16-32-64 channels; ``digits`` uses 32) and K = 60 instead of 100, to fit a CPU. No likelihood: AIS
# at that temperature fails (baselines/README.md#ebm), and exp(-E) at T = 1 is not what is sampled.
_SHORT_RUN = {"arch": "sconv", "ch": 8, "act": "lrelu", "buffer_size": 0, "reg_weight": 0.0,
              "data_noise": 0.03, "sgld_steps": 60, "energy_scale": 2e4, "sgld_step_size": 5e-5,
              "sgld_noise": None, "sample_init": "noise", "sample_steps": 60,
              "likelihood": "none",
              "no_likelihood_reason": (
                  "AIS cannot estimate log Z of this energy (E = 2e4 x net, the short-run sampler's "
                  "temperature): its importance weights collapse onto one chain (ESS 1 of 64) and two "
                  "seeds' log Z differ by thousands of nats, giving impossible bits/dim below 0; "
                  "see baselines/README.md#ebm")}
_SHORT_RUN_TRAIN = {"batch_size": 32, "lr": 2e-4, "betas": (0.9, 0.999), "grad_clip": None, "log_every": 25,
                    "device": "cpu"}
_DIGITS_NO_LIKELIHOOD = (
    "AIS cannot estimate log Z of this energy (E = 2e4 x net, the short-run sampler's temperature): on a 2,000-step seed-0 "
    "model its importance weights collapse onto one chain (ESS 1.0 of 64) and log Z came out 13,146 to 18,167 nats "
    "over two AIS seeds and 500 or 2,000 temperatures; see baselines/README.md#ebm")

PRESETS: dict[str, dict] = {
    "ring8": {
        "dataset": "ring8",
        "model": dict(_RING),
        "train": {**_TOY_TRAIN, "steps": 1000},
        "description": ("MLP energy on the 8-Gaussian ring, cold SGLD from a replay buffer (seconds on CPU); "
                        "no likelihood (its mode weights are not learned)"),
    },
    "ring8-tiny": {
        "dataset": "ring8",
        "model": dict(_RING),
        "train": {**_TOY_TRAIN, "steps": 100},
        "description": "a few seconds of the ring8 recipe (CI)",
    },
    "grid25": {
        "dataset": "grid25",
        "model": {**_RING, "input_scale": 2.0, "prior_std": 8.0, "init_range": 5.0, "sgld_step_size": 1e-3,
                  "sgld_noise": 0.02},
        "train": {**_TOY_TRAIN, "steps": 2000},
        "description": "MLP energy on the 25-Gaussian grid; no likelihood (its mode weights are not learned)",
    },
    "digits": {
        "dataset": "digits",
        "model": {**_SHORT_RUN, "ch": 32, "no_likelihood_reason": _DIGITS_NO_LIKELIHOOD},
        "train": {**_SHORT_RUN_TRAIN, "steps": 1500, "ckpt_every": 500},
        "description": ("short-run non-persistent conv EBM on 8x8 digits (the mnist recipe at width 32, Nijkamp et "
                        "al. 2019): every training chain and every sample is 60 Langevin steps from uniform noise; "
                        "3.8 minutes on one thread (225-234 s measured over 3 seeds), 3.4 minutes wall on 2 CPU cores (205 s "
                        "measured); no likelihood (AIS fails at this temperature)"),
    },
    "digits-jem": {
        "dataset": "digits",
        "model": {**_CONV, "ch": 32, "sample_steps": 200},
        "train": {**_IMG_TRAIN, "steps": 1500, "device": "cpu"},
        "description": ("conv EBM (JEM-style SGLD, replay buffer) on 8x8 digits, samples 200 SGLD steps from noise; "
                        "the digits preset until 2026-12-02 (FID 224 +- 134 over 3 seeds; 219-245 CPU-s)"),
    },
    "digits-tiny": {
        "dataset": "digits",
        "model": {**_CONV, "ch": 8, "sgld_steps": 5, "buffer_size": 512, "ais_chains": 16, "ais_steps": 50},
        "train": {**_IMG_TRAIN, "steps": 30, "log_every": 10, "ckpt_every": 30, "device": "cpu"},
        "description": "a few seconds of the digits-jem recipe (CI regression gate, table tests; AIS likelihood)",
    },
    "mnist": {
        "dataset": "mnist",
        "model": dict(_SHORT_RUN),
        "train": {**_SHORT_RUN_TRAIN, "steps": 2000, "ckpt_every": 250},
        "description": ("short-run non-persistent conv EBM on MNIST (Nijkamp et al. 2019): every training "
                        "chain and every sample is 60 Langevin steps from uniform noise (step 5e-5 on E = 2e4 net, "
                        "noise 0.01); 26 CPU-minutes on one thread (1,586 CPU-s); FID 77 (classifier-mnist), "
                        "recall 0.67; no likelihood (AIS fails at this temperature)"),
    },
    "mnist-gpu": {
        "dataset": "mnist",
        "model": {**_CONV, "ch": 64},
        "train": {**_IMG_TRAIN, "steps": 20000, "ckpt_every": 2000, "device": "auto"},
        "description": "conv EBM on MNIST (GPU)",
    },
    "cifar10": {
        "dataset": "cifar10",
        "model": {**_CONV, "ch": 128, "ais_chains": 32},
        "train": {**_IMG_TRAIN, "steps": 100000, "ckpt_every": 5000, "device": "auto"},
        "description": "conv EBM, JEM-style SGLD with a 10k replay buffer, on CIFAR-10 (GPU)",
    },
}
