"""GAN presets (``python -m baselines train gan --preset NAME``).

Recipes: DCGAN (Radford et al. 2016: Adam 2e-4, betas (0.5, 0.999), batch norm),
WGAN-GP (Gulrajani et al. 2017: n_critic 5, lambda 10, Adam 1e-4, betas (0, 0.9), no
batch norm in the critic), SNGAN-style hinge loss with spectral norm (Miyato et al. 2018),
PacGAN packing for the 2-D toys (Lin et al. 2018). With n_critic > 1 the trainer's batch is
split into n_critic critic batches (batch_size = n_critic x per-step batch).
"""

from __future__ import annotations

_MLP = {"arch": "mlp", "z_dim": 16, "hidden": 128, "layers": 3, "loss": "ns", "pack": 2}
_TOY_TRAIN = {"batch_size": 256, "lr": 1e-3, "betas": (0.5, 0.999), "grad_clip": None, "log_every": 10,
              "ckpt_every": 500, "device": "cpu"}
_DCGAN_TRAIN = {"batch_size": 64, "lr": 2e-4, "betas": (0.5, 0.999), "grad_clip": None, "log_every": 25,
                "ckpt_every": 500}

# The PacGAN / VEEGAN 2-D protocol (Lin et al. 2018, code fjxmlzn/PacGAN; Srivastava et al. 2017):
# z ~ N(0, I_2); G = 4 hidden layers of 400 units (linear without bias, batch norm, ReLU) and a
# linear output; D = 3 maxout layers of 200 units with 5 pieces and a linear logit; weights
# N(0, 0.02^2), biases 0; non-saturating loss with one simultaneous D/G Adam step per batch
# (lr 1e-4, config "beta1": 0.8); batches of 100 packs of m samples (trainer batch = 100 m).
# Published: 400 epochs of 1,000 batches (400,000 steps), scored on 2,500 samples.
# Adam's betas: the PacGAN code runs on Blocks, whose Adam (blocks.algorithms.Adam, defaults beta1 0.1,
# beta2 0.001) follows the first arXiv version of the Adam paper, where beta is the weight of the NEW
# gradient: mean_t = beta1 * g + (1 - beta1) * mean, variance_t = beta2 * g^2 + (1 - beta2) * variance.
# Its beta1 0.8 and default beta2 0.001 are therefore torch's betas (0.2, 0.999), not (0.8, 0.999)
# (tests/test_baselines_gan.py runs Blocks' update rule beside torch.optim.Adam). Until 2026-12-03 the
# presets read the config literally as torch's beta1 0.8 (momentum 0.8 instead of 0.2).
PACGAN_2D = {"arch": "mlp", "z_dim": 2, "hidden": 400, "layers": 4, "mlp_g_norm": "bn", "bn_momentum": 0.05,
             "d_hidden": 200, "d_layers": 3, "maxout_pieces": 5, "init_std": 0.02, "loss": "ns",
             "update": "simultaneous", "bn_refresh": 50, "pack": 2}
PACGAN_2D_TRAIN = {"batch_size": 200, "lr": 1e-4, "betas": (0.2, 0.999), "grad_clip": None, "steps": 400_000,
                   "log_every": 100, "ckpt_every": 2000, "device": "cpu",
                   "extra": {"adam_fused": True}}


# grid25's CPU length (`grid25-10k`: the table's grid25 GAN until 2026-12-03, ring8's until 2026-12-02): 10,000
# steps instead of 400,000, with Adam's lr raised to 2e-3,
# betas (0, 0.9) instead of the (0.8, 0.999) then read as published (no first-moment momentum, as in WGAN-GP/TTUR-style GAN
# training) and the lr decayed to 0 on a cosine, which is what sharpens the modes (std 0.01 / 0.05)
# in so few steps. Measured (seed 0, one thread, mode_coverage on 2,500 samples): at 2,000 steps
# with lr 1e-3 and the paper's betas, ring8 8 modes / 29.5% high quality and grid25 12.7 / 1.6%;
# with this schedule ring8 8 / 96.3% (193 CPU-s) and grid25 20 / 86.5% (189 CPU-s); over seeds 0-2
# ring8 7.0 modes / 96.6% and grid25 17.7 / 85.9% (baselines/README.md).
CPU_2D_TRAIN = {"steps": 10_000, "lr": 2e-3, "betas": (0.0, 0.9), "lr_decay": "cosine", "ckpt_every": 2000}

# ring8's CPU length (2026-12-02): what was then read as the published optimiser (lr 1e-4, betas (0.8, 0.999);
# the published one is (0.2, 0.999), see above; this preset keeps the betas its board was made with) for 20,000 steps,
# where it spreads the generator over all 8 modes, then 10,000 steps at lr 5e-4 with betas (0, 0.9) decayed
# to 0 on a cosine, which sharpens them (Adam's moments carry over). PacGAN2, seeds 0, 1, 2 (2,500 samples):
# 8 / 93.2% / 0.31, 8 / 93.2% / 0.28, 8 / 95.7% / 0.06 (modes / high quality / reverse KL); the 10k
# schedule above gave 7.0 modes on average. About 1,250 CPU-s on one thread (30,000 steps at ~40 ms).
RING8_CPU_TRAIN = {"steps": 30_000, "lr": 1e-4, "betas": (0.8, 0.999), "ckpt_every": 2000,
                   "stages": [{"steps": 20_000},
                              {"steps": 10_000, "lr": 5e-4, "betas": (0.0, 0.9), "lr_decay": "cosine"}]}


def _pacgan(pack: int, **train) -> dict:
    return {"model": {**PACGAN_2D, "pack": pack},
            "train": {**PACGAN_2D_TRAIN, "batch_size": 100 * pack, **train}}


def _published(dataset: str, pack: int) -> dict:
    """The published PacGAN protocol on ``dataset`` with packing degree ``pack`` (the ``*-published`` presets)."""
    if pack == 2:
        description = ("PacGAN2 with the published schedule (400,000 steps of Adam lr 1e-4, betas (0.2, 0.999): the "
                       "code's Blocks beta1 0.8; 2.2-2.6 CPU-hours on one thread, 20-23 ms a step)")
    else:
        description = (f"GAN without packing (m = 1) with the published schedule of {dataset}-published (PacGAN's GAN "
                       "row); 24 ms of CPU a step measured beside two other trainings, so up to 2.7 CPU-hours")
    return {"dataset": dataset, **_pacgan(pack), "description": description}


PRESETS: dict[str, dict] = {
    "ring8": {
        "dataset": "ring8",
        **_pacgan(2, **RING8_CPU_TRAIN),
        "description": ("PacGAN2, the PacGAN/VEEGAN 2-D networks at CPU length (20,000 steps of the published Adam "
                        "lr 1e-4, then 10,000 at lr 5e-4 cosine, betas (0, 0.9); about 1,250 CPU-s on one thread); "
                        "the table's ring8 GAN"),
    },
    "ring8-vanilla": {
        "dataset": "ring8",
        **_pacgan(1, **RING8_CPU_TRAIN),
        "description": "GAN without packing (m = 1), same networks and schedule as ring8 (about 1,100 CPU-s on one thread)",
    },
    "ring8-published": _published("ring8", 2),
    "ring8-vanilla-published": _published("ring8", 1),
    "ring8-tiny": {
        "dataset": "ring8",
        "model": dict(_MLP),
        "train": {**_TOY_TRAIN, "steps": 200},
        "description": "a few seconds of the ring8 recipe (CI)",
    },
    "grid25": {
        **_published("grid25", 2),
        "description": ("PacGAN2 with the published schedule (the config of grid25-published: 400,000 steps of Adam lr "
                        "1e-4, betas (0.2, 0.999)); the table's grid25 GAN. 2.2-2.6 CPU-hours a seed on one thread "
                        "(3 beside another training): adopt baselines/checkpoints/gan-grid25-published-sS.pt"),
    },
    "grid25-vanilla": {
        **_published("grid25", 1),
        "description": ("GAN without packing (m = 1), same networks and schedule as grid25 (the config of "
                        "grid25-vanilla-published)"),
    },
    "grid25-10k": {
        "dataset": "grid25",
        **_pacgan(2, **CPU_2D_TRAIN),
        "description": ("PacGAN2 at CPU length (10,000 steps, Adam lr 2e-3 cosine, betas (0, 0.9); about 190 CPU-s on "
                        "one thread); the table's grid25 GAN until 2026-12-03: 17.7-20.3 modes, 75-86% high quality"),
    },
    "grid25-vanilla-10k": {
        "dataset": "grid25",
        **_pacgan(1, **CPU_2D_TRAIN),
        "description": "GAN without packing (m = 1), same networks and schedule as grid25-10k (about 150 CPU-s on one thread)",
    },
    "grid25-published": _published("grid25", 2),
    "grid25-vanilla-published": _published("grid25", 1),
    "digits": {
        "dataset": "digits",
        "model": {"arch": "dcgan", "z_dim": 64, "g_channels": 64, "d_channels": 64, "loss": "ns", "conditional": True},
        "train": {**_DCGAN_TRAIN, "steps": 3000, "device": "cpu"},
        "description": "class-conditional DCGAN (label embedding in G, projection D) on 8x8 digits (<= 3 min on 2 CPU cores)",
    },
    "digits-uncond": {
        "dataset": "digits",
        "model": {"arch": "dcgan", "z_dim": 64, "g_channels": 64, "d_channels": 64, "loss": "ns"},
        "train": {**_DCGAN_TRAIN, "steps": 3000, "device": "cpu"},
        "description": "unconditional DCGAN on 8x8 digits",
    },
    "digits-wgangp": {
        "dataset": "digits",
        "model": {"arch": "dcgan", "z_dim": 64, "g_channels": 64, "d_channels": 64, "loss": "wgan-gp",
                  "n_critic": 5, "d_norm": "layer"},
        "train": {"batch_size": 320, "lr": 1e-4, "betas": (0.0, 0.9), "grad_clip": None, "steps": 1000,
                  "log_every": 10, "ckpt_every": 250, "device": "cpu"},
        "description": "WGAN-GP (n_critic 5, lambda 10) on 8x8 digits",
    },
    "digits-tiny": {
        "dataset": "digits",
        "model": {"arch": "dcgan", "z_dim": 16, "g_channels": 16, "d_channels": 16, "loss": "ns", "conditional": True},
        "train": {**_DCGAN_TRAIN, "steps": 60, "log_every": 10, "ckpt_every": 60, "device": "cpu"},
        "description": "a few seconds of the digits recipe (CI regression gate, table tests)",
    },
    "mnist": {
        "dataset": "mnist",
        "model": {"arch": "dcgan", "z_dim": 64, "g_channels": 32, "d_channels": 32, "loss": "ns", "pack": 2},
        "train": {**_DCGAN_TRAIN, "steps": 3000, "device": "cpu"},
        "description": ("unconditional DCGAN on MNIST, PacGAN discriminator (packs of 2), CPU-sized "
                        "(18 CPU-min); the table's MNIST GAN"),
    },
    "mnist-cond": {
        "dataset": "mnist",
        "model": {"arch": "dcgan", "z_dim": 64, "g_channels": 32, "d_channels": 32, "loss": "ns", "conditional": True},
        "train": {**_DCGAN_TRAIN, "steps": 3000, "device": "cpu"},
        "description": "class-conditional DCGAN on MNIST, CPU-sized; collapses within classes (recall 0)",
    },
    "mnist-sn": {
        "dataset": "mnist",
        "model": {"arch": "dcgan", "z_dim": 64, "g_channels": 32, "d_channels": 32, "loss": "hinge",
                  "spectral_norm": True, "conditional": True},
        "train": {**_DCGAN_TRAIN, "steps": 3000, "device": "cpu"},
        "description": ("class-conditional SNGAN-style DCGAN (hinge loss, spectral norm in D) on MNIST, CPU-sized; "
                        "collapses within classes too"),
    },
    "mnist-gpu": {
        "dataset": "mnist",
        "model": {"arch": "dcgan", "z_dim": 100, "g_channels": 64, "d_channels": 64, "loss": "ns", "conditional": True},
        "train": {**_DCGAN_TRAIN, "batch_size": 128, "steps": 20000, "ckpt_every": 2000, "device": "auto"},
        "description": "class-conditional DCGAN on MNIST (GPU)",
    },
    "cifar10": {
        "dataset": "cifar10",
        "model": {"arch": "dcgan", "z_dim": 128, "g_channels": 64, "d_channels": 64, "loss": "hinge",
                  "spectral_norm": True},
        "train": {**_DCGAN_TRAIN, "steps": 100000, "ema_decay": 0.9999, "ckpt_every": 5000, "device": "auto"},
        "description": "SNGAN-style DCGAN (hinge loss, spectral norm) on CIFAR-10 (GPU)",
    },
    "cifar10-wgangp": {
        "dataset": "cifar10",
        "model": {"arch": "dcgan", "z_dim": 128, "g_channels": 64, "d_channels": 64, "loss": "wgan-gp",
                  "n_critic": 5, "d_norm": "layer"},
        "train": {"batch_size": 320, "lr": 1e-4, "betas": (0.0, 0.9), "grad_clip": None, "steps": 100000,
                  "log_every": 100, "ckpt_every": 5000, "device": "auto"},
        "description": "WGAN-GP standard CNN on CIFAR-10 (GPU)",
    },
}
