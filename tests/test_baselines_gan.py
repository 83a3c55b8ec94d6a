"""GAN baseline: WGAN-GP penalty against its analytic value, ring8 mode coverage, sampling
determinism, checkpoints, kill-and-resume with both optimisers, protocol, bad input."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch

from baselines.checkpoint import load_baseline, read_checkpoint
from baselines.gan import LIKELIHOOD_KIND, PRESETS, build_model, gradient_penalty
from baselines.gan.nets import Maxout
from baselines.train import TrainConfig, Trainer, train_preset
from dgmbench.data import get_dataset
from dgmbench.data.registry import DATASETS
from dgmbench.errors import DgmbenchError, UsageError
from dgmbench.metrics.mode_coverage import mode_coverage
from dgmbench.protocol import GenerativeModel, likelihood_kind, load_model
from dgmbench.table.adopt import train_differences

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


# The ring8 PacGAN2 networks in a short run for a test: 1,500 steps at lr 2e-3 cosine-decayed to 0 with
# betas (0, 0.9) (grid25's CPU schedule; ring8's two-stage 30,000-step schedule does not shorten to
# seconds) with the hidden layers narrowed from 400 (G) / 200 (D) to 64 units, about 4x cheaper per
# step; same depth, maxout pieces, batch norm, init, packing and update. Measured (seeds 0, 1, 2,
# 2026-12-02): 8 of 8 modes, 49-71% high quality, 18-21 CPU seconds each on the loaded 2-core machine.
SHORT_RUN = {"model": {"hidden": 64, "d_hidden": 64},
             "train": {"steps": 1500, "log_every": 100, "lr": 2e-3, "betas": (0.0, 0.9), "lr_decay": "cosine",
                       "stages": None}}


def _tiny_cfg(**kw) -> TrainConfig:
    base = {"steps": 6, "batch_size": 16, "lr": 1e-3, "betas": (0.5, 0.999), "grad_clip": None, "log_every": 1,
            "ckpt_every": 3, "device": "cpu", "seed": 0}
    return TrainConfig.from_dict({**base, **kw})


# --- gradient penalty: analytic value for a linear critic -----------------------------------
def test_gradient_penalty_of_a_linear_critic_is_analytic():
    torch.manual_seed(0)
    d = 12
    critic = torch.nn.Linear(d, 1)
    with torch.no_grad():
        critic.weight.mul_(3.0)
    real, fake = torch.randn(32, d), torch.randn(32, d) + 2
    gp, norms = gradient_penalty(critic, real, fake)
    w = critic.weight.detach().reshape(-1)
    wn = float(w.norm())
    assert not math.isclose(wn, 1.0, abs_tol=0.1)  # the penalty is not trivially zero
    # ||grad_x D(x_hat)|| = ||w|| at every interpolate, so GP = (||w|| - 1)^2
    torch.testing.assert_close(norms.detach(), torch.full((32,), wn), rtol=1e-6, atol=1e-6)
    assert float(gp.detach()) == pytest.approx((wn - 1) ** 2, rel=1e-6)
    # it is differentiable in the critic's weights: d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    gp.backward()
    torch.testing.assert_close(critic.weight.grad.reshape(-1), 2 * (wn - 1) * w / wn, rtol=1e-5, atol=1e-6)


def test_gradient_penalty_images_and_explicit_eps():
    """Image-shaped inputs: a linear critic on flattened pixels gives ||w|| whatever eps is."""
    torch.manual_seed(1)
    lin = torch.nn.Linear(3 * 4 * 4, 1)

    def critic(x):
        return lin(x.flatten(1)).squeeze(1)

    real, fake = torch.rand(5, 3, 4, 4), torch.rand(5, 3, 4, 4)
    eps = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0])
    gp, norms = gradient_penalty(critic, real, fake, eps=eps)
    wn = float(lin.weight.detach().norm())
    torch.testing.assert_close(norms.detach(), torch.full((5,), wn))
    assert float(gp.detach()) == pytest.approx((wn - 1) ** 2, rel=1e-6)


def test_wgan_gp_discriminator_loss_includes_the_weighted_penalty():
    """The model's WGAN-GP critic loss = E[D(fake)] - E[D(real)] + lambda (||w|| - 1)^2 for a linear critic."""
    torch.manual_seed(0)
    model = build_model({"loss": "wgan-gp", "gp_weight": 7.0}, (2,))

    class Linear(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 1)

        def forward(self, x, y=None):
            return self.lin(x).squeeze(1)

    model.discriminator = Linear()
    with torch.no_grad():
        model.discriminator.lin.weight.copy_(torch.tensor([[2.0, -1.0]]))
        model.discriminator.lin.bias.fill_(0.3)
    real, fake = torch.randn(64, 2), torch.randn(64, 2) * 2 + 1
    loss, logs = model._d_loss(real, fake, None)
    w = torch.tensor([2.0, -1.0])
    expected = float((fake @ w).mean() - (real @ w).mean()) + 7.0 * (math.sqrt(5.0) - 1) ** 2
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)
    assert logs["gp"] == pytest.approx((math.sqrt(5.0) - 1) ** 2, rel=1e-5)


# --- the PacGAN / VEEGAN 2-D architecture ------------------------------------------------------
def _linears(module):
    return [m for m in module.modules() if isinstance(m, torch.nn.Linear)]


@pytest.mark.parametrize("preset,pack", [("ring8", 2), ("grid25-10k", 2), ("ring8-vanilla", 1), ("grid25-vanilla-10k", 1)])
def test_2d_presets_have_the_published_architecture(preset, pack):
    """G: z in R^2, 4 x 400 (bias-free linear, batch norm, ReLU), linear output with bias; D: 3 maxout
    layers of 200 units x 5 pieces on m concatenated points, linear logit; 100 packs per batch."""
    spec = PRESETS[preset]
    model = build_model(spec["model"], (2,))
    assert model.pack == pack and model.z_dim == 2
    g = _linears(model.generator)
    assert [(m.in_features, m.out_features) for m in g] == [(2, 400), (400, 400), (400, 400), (400, 400), (400, 2)]
    assert [m.bias is None for m in g] == [True, True, True, True, False]
    bns = [m for m in model.generator.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert [b.num_features for b in bns] == [400] * 4 and all(b.momentum == 0.05 for b in bns)
    assert sum(isinstance(m, torch.nn.ReLU) for m in model.generator.modules()) == 4
    maxouts = [m for m in model.discriminator.modules() if isinstance(m, Maxout)]
    assert [(m.linear.in_features, m.out_dim, m.pieces) for m in maxouts] == [(2 * pack, 200, 5), (200, 200, 5), (200, 200, 5)]
    d = _linears(model.discriminator)
    assert [(m.in_features, m.out_features) for m in d] == [(2 * pack, 1000), (200, 1000), (200, 1000), (200, 1)]
    # parameter counts written out by hand
    n_g = 2 * 400 + 3 * 400 * 400 + 4 * 2 * 400 + 400 * 2 + 2
    n_d = (2 * pack * 1000 + 1000) + 2 * (200 * 1000 + 1000) + 201
    assert sum(p.numel() for p in model.generator.parameters()) == n_g
    assert sum(p.numel() for p in model.discriminator.parameters()) == n_d
    tc = spec["train"]
    assert tc["batch_size"] == 100 * pack
    assert spec["model"]["update"] == "simultaneous" and spec["model"]["loss"] == "ns"
    # the CPU length trades only the optimiser schedule (published: 400,000 steps at 1e-4 with betas (0.2, 0.999)):
    # ring8 takes 20,000 steps at 1e-4 with betas (0.8, 0.999) (the code's Blocks beta1 read as torch's), then
    # 10,000 at 5e-4 decayed to 0 with betas (0, 0.9); grid25-10k takes 10,000 steps at 2e-3 decayed to 0 with betas (0, 0.9)
    cfg = TrainConfig.from_dict(tc)
    if preset.startswith("ring8"):
        assert (cfg.steps, cfg.lr, tuple(cfg.betas)) == (30_000, 1e-4, (0.8, 0.999))
        assert [(st["steps"], st.get("lr", cfg.lr), tuple(st.get("betas", cfg.betas)), st.get("lr_decay", "none"))
                for st in cfg.stages] == [(20_000, 1e-4, (0.8, 0.999), "none"), (10_000, 5e-4, (0.0, 0.9), "cosine")]
        assert cfg.lr * cfg.lr_factor(19_999) == 1e-4 and cfg.lr * cfg.lr_factor(20_000) == pytest.approx(5e-4)
    else:
        assert (cfg.steps, cfg.lr, cfg.lr_decay, tuple(cfg.betas), cfg.stages) == (10_000, 2e-3, "cosine", (0.0, 0.9), None)
    # the published twins (PacGAN2 and, for the vanilla presets, m = 1): the same networks, the paper's optimiser
    published = PRESETS[preset.split("-")[0] + ("-vanilla-published" if pack == 1 else "-published")]
    assert tuple(published["train"]["betas"]) == (0.2, 0.999)  # Blocks' beta1 0.8: see the next test
    assert published["model"] == spec["model"]
    assert (published["train"]["steps"], published["train"]["lr"]) == (400_000, 1e-4)
    assert published["train"].get("lr_decay", "none") == "none" and published["train"]["batch_size"] == 100 * pack


@pytest.mark.parametrize("table_preset,published", [("grid25", "grid25-published"),
                                                    ("grid25-vanilla", "grid25-vanilla-published")])
def test_the_grid25_table_gan_is_the_published_protocol(table_preset, published):
    """The table's grid25 GAN (and its m = 1 twin) trains exactly what grid25-published trains, so the committed
    400,000-step checkpoints stand in for it (``--adopt`` compares model and training config)."""
    spec, twin = PRESETS[table_preset], PRESETS[published]
    assert spec["dataset"] == twin["dataset"] == "grid25"
    assert spec["model"] == twin["model"] and spec["train"] == twin["train"]
    cfg = TrainConfig.from_dict(spec["train"])
    assert (cfg.steps, cfg.lr, tuple(cfg.betas), cfg.lr_decay, cfg.stages) == (400_000, 1e-4, (0.2, 0.999), "none", None)


def test_blocks_adam_beta1_0_8_is_torch_betas_0_2_0_999():
    """The PacGAN code's optimiser is Blocks' Adam(learning_rate=1e-4, beta1=0.8) with Blocks' default
    beta2 0.001. Blocks writes Adam with beta as the weight of the new gradient (blocks/algorithms
    Adam.compute_step, written out here): mean_t = b1t g + (1 - b1t) mean with b1t = 1 - (1 - beta1)
    decay^(t-1), variance_t = beta2 g^2 + (1 - beta2) variance, step = lr sqrt(1 - (1 - beta2)^t) /
    (1 - (1 - beta1)^t) mean_t / (sqrt(variance_t) + eps). torch.optim.Adam with betas (0.2, 0.999)
    follows the same parameters; with (0.8, 0.999) it does not."""
    gen = torch.Generator().manual_seed(0)
    grads = [torch.randn(5, generator=gen) for _ in range(30)]
    lr, beta1, beta2, eps, decay = 1e-4, 0.8, 0.001, 1e-8, 1 - 1e-8

    def blocks_path() -> list[torch.Tensor]:
        p, mean, var, out = torch.zeros(5, dtype=torch.float64), torch.zeros(5, dtype=torch.float64), \
            torch.zeros(5, dtype=torch.float64), []
        for t, g in enumerate(grads, start=1):
            g = g.double()
            b1t = 1 - (1 - beta1) * decay ** (t - 1)
            mean = b1t * g + (1 - b1t) * mean
            var = beta2 * g * g + (1 - beta2) * var
            p = p - lr * math.sqrt(1 - (1 - beta2) ** t) / (1 - (1 - beta1) ** t) * mean / (var.sqrt() + eps)
            out.append(p.clone())
        return out

    def torch_path(betas: tuple[float, float]) -> list[torch.Tensor]:
        p = torch.zeros(5, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.Adam([p], lr=lr, betas=betas, eps=eps)
        out = []
        for g in grads:
            p.grad = g.double().clone()
            opt.step()
            out.append(p.detach().clone())
        return out

    ref = blocks_path()
    same = torch_path((0.2, 0.999))
    # equal up to where each adds eps (Blocks to sqrt(v), torch to the bias-corrected sqrt(v)): ~1e-10 here
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-9) for a, b in zip(ref, same))
    literal = torch_path((0.8, 0.999))
    assert not torch.allclose(ref[-1], literal[-1], rtol=1e-2)


def test_pacgan_initialisation_is_normal_0_02_with_zero_biases():
    torch.manual_seed(0)
    model = build_model(PRESETS["ring8"]["model"], (2,))
    big = [m.weight for m in _linears(model) if m.weight.numel() >= 100_000]
    w = torch.cat([p.detach().reshape(-1) for p in big])
    assert float(w.mean()) == pytest.approx(0.0, abs=2e-4)
    assert float(w.std()) == pytest.approx(0.02, rel=0.01)
    assert all(float(m.bias.detach().abs().max()) == 0.0 for m in _linears(model) if m.bias is not None)


def test_maxout_is_the_max_over_each_units_pieces():
    """Against a direct loop: unit j = max_k (W x + b)[j * pieces + k]."""
    torch.manual_seed(0)
    layer = Maxout(3, 4, 5)
    x = torch.randn(6, 3)
    w, b = layer.linear.weight.detach(), layer.linear.bias.detach()
    expected = torch.empty(6, 4)
    for i in range(6):
        for j in range(4):
            expected[i, j] = max(float(w[j * 5 + k] @ x[i] + b[j * 5 + k]) for k in range(5))
    torch.testing.assert_close(layer(x), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("pack", [1, 2, 3])
def test_packing_puts_m_consecutive_samples_side_by_side_in_one_discriminator_input(pack):
    model = build_model({**PRESETS["ring8"]["model"], "pack": pack}, (2,))
    seen = []

    class Recorder(torch.nn.Module):
        def forward(self, x, y=None):
            seen.append(x)
            return x.sum(1)

    model.discriminator = Recorder()
    x = torch.arange(12 * 2, dtype=torch.float32).reshape(12, 2)
    out = model.critic(x)
    inp = seen[0]
    assert inp.shape == (12 // pack, 2 * pack) and out.shape == (12 // pack,)
    for i in range(12 // pack):  # pack i = (x[i m], x[i m + 1], ..., x[i m + m - 1]), each (x1, x2)
        torch.testing.assert_close(inp[i], torch.cat([x[i * pack + k] for k in range(pack)]))
    if pack > 1:
        with pytest.raises(UsageError, match="packs of"):
            model.critic(x[: pack + 1])


def test_simultaneous_update_uses_the_same_fakes_and_the_old_discriminator_for_g():
    """One step with SGD equals the hand-written ALI/PacGAN update: D and G gradients of the
    non-saturating losses at the *same* parameters and the same z, then both step."""
    torch.manual_seed(0)
    conf = {**PRESETS["ring8"]["model"], "hidden": 16, "layers": 2, "d_hidden": 8, "d_layers": 2}
    model = build_model(conf, (2,))
    ref = copy.deepcopy(model)
    x = torch.randn(8, 2)
    lr = 0.1
    opts = {"d": torch.optim.SGD(model.discriminator.parameters(), lr=lr),
            "g": torch.optim.SGD(model.generator.parameters(), lr=lr)}
    torch.manual_seed(1)
    logs = model.train_step(x, None, opts, 0, _tiny_cfg())
    torch.manual_seed(1)
    z = torch.randn(8, 2)
    fake = ref.generator(z)
    d_real = ref.discriminator(x.reshape(4, 4))
    d_fake = ref.discriminator(fake.reshape(4, 4))
    d_loss = torch.log1p(torch.exp(-d_real)).mean() + torch.log1p(torch.exp(d_fake)).mean()
    g_loss = torch.log1p(torch.exp(-d_fake)).mean()
    dp, gp = list(ref.discriminator.parameters()), list(ref.generator.parameters())
    d_grads = torch.autograd.grad(d_loss, dp, retain_graph=True)
    g_grads = torch.autograd.grad(g_loss, gp)
    assert logs["d_loss"] == pytest.approx(float(d_loss.detach()), rel=1e-5)
    assert logs["g_loss"] == pytest.approx(float(g_loss.detach()), rel=1e-5)
    for p, p0, g in zip(model.discriminator.parameters(), dp, d_grads):
        torch.testing.assert_close(p.detach(), p0.detach() - lr * g, rtol=1e-5, atol=1e-7)
    for p, p0, g in zip(model.generator.parameters(), gp, g_grads):
        torch.testing.assert_close(p.detach(), p0.detach() - lr * g, rtol=1e-5, atol=1e-7)
    # the batch-norm running means moved once (one generator pass), from 0 by 0.05 x the batch mean
    bn = model.generator.net[1]
    h = ref.generator.net[0](z).detach()
    torch.testing.assert_close(bn.running_mean, 0.05 * h.mean(0), rtol=1e-5, atol=1e-7)


def test_bn_refresh_moves_the_running_statistics_to_the_current_weights():
    """k no-grad passes at momentum 0.05: running mean = 0.95^k x old + (1 - 0.95^k) x batch means.
    The first layer is a bias-free linear map of z ~ N(0, I), whose batch means are near 0."""
    torch.manual_seed(0)
    model = build_model(PRESETS["ring8"]["model"], (2,))
    bn = model.generator.net[1]
    bn.running_mean.fill_(5.0)
    weights = [p.detach().clone() for p in model.parameters()]
    model.eval()
    model.refresh_bn(50, 200)
    assert not model.generator.training  # the mode is restored
    torch.testing.assert_close(bn.running_mean, torch.full((400,), 5.0 * 0.95**50), rtol=0, atol=0.01)
    assert all(torch.equal(a, b.detach()) for a, b in zip(weights, model.parameters()))  # no weight changes


# --- ring8: a short PacGAN run captures several modes ----------------------------------------------
def test_short_pacgan_run_on_ring8_covers_several_modes():
    """SHORT_RUN of the ring8 PacGAN2 preset (seconds on one thread); 2,500 samples, 3-std threshold."""
    res = train_preset("gan", "ring8", progress=False, seed=0, overrides=SHORT_RUN)
    assert not res.diverged and res.step == 1500
    test = get_dataset("ring8", "test")
    samples = res.model.sample(2500, generator=torch.Generator().manual_seed(0))
    mc = mode_coverage(samples, test.modes, test.mode_std)
    assert mc.modes_captured >= 6, mc
    assert mc.high_quality_fraction >= 0.2, mc  # an untrained generator puts ~0 within 0.03 of a mode (seed 0: 0.49)
    # discriminator and generator losses are logged through training (for the stability plot)
    assert {"d_loss", "g_loss", "d_real", "d_fake"} <= set(res.history[-1])


# --- sampling, checkpoints, protocol ------------------------------------------------------------
@pytest.mark.parametrize("conf,shape,nc", [
    ({}, (1, 8, 8), None),
    ({"conditional": True, "spectral_norm": True, "loss": "hinge"}, (1, 8, 8), 10),
    ({"loss": "wgan-gp", "n_critic": 2, "d_norm": "layer"}, (3, 32, 32), None),
    ({"loss": "ns"}, (1, 28, 28), None),
    ({}, (2,), None),
])
def test_sample_shape_range_and_seeded_determinism(conf, shape, nc):
    torch.manual_seed(0)
    model = build_model(conf, shape, nc)
    g = torch.Generator().manual_seed(3)
    a = model.sample(7, generator=g)
    b = model.sample(7, generator=torch.Generator().manual_seed(3))
    c = model.sample(7, generator=torch.Generator().manual_seed(4))
    assert a.shape == (7, *shape)
    assert torch.equal(a, b) and not torch.equal(a, c)
    if len(shape) == 3:
        assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert model.nfe_per_sample == 1.0


def test_conditional_sampling_follows_the_labels():
    torch.manual_seed(0)
    model = build_model({"conditional": True}, (1, 8, 8), 10)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    x0 = model.sample(4, generator=g(), labels=torch.zeros(4, dtype=torch.long))
    x1 = model.sample(4, generator=g(), labels=torch.ones(4, dtype=torch.long))
    assert not torch.equal(x0, x1)  # same z, other label: other images
    with pytest.raises(UsageError, match="labels must lie"):
        model.sample(2, labels=torch.tensor([0, 10]))
    with pytest.raises(UsageError, match="unconditional"):
        build_model({}, (1, 8, 8)).sample(2, labels=torch.tensor([0, 1]))


def _train(tmp_path, family_cfg, shape, data, cfg, name="c.pt", max_steps=None, nc=None):
    torch.manual_seed(cfg.seed)
    model = build_model(family_cfg, shape, nc)
    tr = Trainer(model, data, cfg, checkpoint=str(tmp_path / name), family="gan", preset="test", progress=False)
    return tr.fit(max_steps=max_steps)


def test_train_checkpoint_round_trip_and_protocol(tmp_path):
    data = get_dataset("digits", "train")
    res = _train(tmp_path, {"conditional": True, "g_channels": 8, "d_channels": 8}, (1, 8, 8), data,
                 _tiny_cfg(steps=3), nc=10)
    assert len(res.history) == 3 and all(math.isfinite(h["g_loss"]) for h in res.history)
    loaded = load_baseline(str(tmp_path / "c.pt"))
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    torch.testing.assert_close(loaded.sample(6, generator=g()), res.model.sample(6, generator=g()), rtol=0, atol=0)
    m = load_model(str(tmp_path / "c.pt"))
    assert isinstance(m, GenerativeModel)
    assert m.data_shape == (1, 8, 8) and m.num_classes == 10 and m.nfe_per_sample == 1.0
    assert likelihood_kind(m) == "none" == LIKELIHOOD_KIND
    assert not hasattr(m, "log_likelihood")
    assert m.sample(3, generator=g()).shape == (3, 1, 8, 8)


@pytest.mark.parametrize("conf", [
    {"loss": "wgan-gp", "n_critic": 2},
    {"loss": "ns", "spectral_norm": True},
])
def test_kill_and_resume_gives_the_uninterrupted_loss_trajectory(tmp_path, conf):
    """Both optimisers, BN / spectral-norm state and the RNGs survive a checkpoint."""
    data = get_dataset("ring8", "train")
    conf = {"hidden": 32, "layers": 2, **conf}
    cfg = _tiny_cfg(steps=8, ckpt_every=3)
    full = _train(tmp_path, conf, (2,), data, cfg, name="full.pt")
    _train(tmp_path, conf, (2,), data, cfg, name="part.pt", max_steps=3)  # "killed" after the step-3 checkpoint
    resumed = _train(tmp_path, conf, (2,), data, cfg, name="part.pt")
    assert resumed.step == full.step == 8
    keys = ("d_loss", "g_loss", "d_real", "d_fake")
    assert [[h[k] for k in keys] for h in resumed.history] == [[h[k] for k in keys] for h in full.history]
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert torch.equal(resumed.model.sample(5, generator=g()), full.model.sample(5, generator=g()))


def test_kill_and_resume_dcgan_with_batch_norm(tmp_path):
    data = get_dataset("digits", "train")
    conf = {"g_channels": 8, "d_channels": 8}
    cfg = _tiny_cfg(steps=4, ckpt_every=2)
    full = _train(tmp_path, conf, (1, 8, 8), data, cfg, name="full.pt")
    _train(tmp_path, conf, (1, 8, 8), data, cfg, name="part.pt", max_steps=2)
    resumed = _train(tmp_path, conf, (1, 8, 8), data, cfg, name="part.pt")
    assert [h["g_loss"] for h in resumed.history] == [h["g_loss"] for h in full.history]
    assert [h["d_loss"] for h in resumed.history] == [h["d_loss"] for h in full.history]


# --- presets and bad input -------------------------------------------------------------------
def test_presets_build_and_name_their_dataset():
    required = {"digits", "digits-tiny", "mnist", "mnist-gpu", "cifar10", "ring8", "grid25", "ring8-tiny"}
    assert required <= set(PRESETS)
    for name, spec in PRESETS.items():
        data_shape = DATASETS[spec["dataset"]].shape
        TrainConfig.from_dict(spec["train"])
        m = build_model(spec["model"], data_shape, 10 if spec["model"].get("conditional") else None)
        assert m.sample(2, generator=torch.Generator().manual_seed(0)).shape == (2, *data_shape), name
        assert spec.get("description")


@pytest.mark.parametrize("conf,shape,match", [
    ({"loss": "wasserstein"}, (2,), "unknown GAN loss"),
    ({"lr": 1e-3}, (2,), "unknown gan model settings"),
    ({"loss": "wgan-gp", "d_norm": "bn"}, (1, 8, 8), "batch norm"),
    ({"conditional": True}, (1, 8, 8), "class labels"),
    ({"arch": "dcgan"}, (2,), "needs image data"),
    ({}, (1, 7, 7), "square image side"),
    ({"n_critic": 0}, (2,), "n_critic"),
])
def test_bad_configs_are_clear_errors(conf, shape, match):
    with pytest.raises(DgmbenchError, match=match):
        build_model(conf, shape, None)


# --- the committed 400,000-step grid25 checkpoints ---------------------------------------------------
COMMITTED_GRID25 = sorted(Path(__file__).resolve().parents[1].glob("baselines/checkpoints/gan-grid25-published-s*.pt"))


def _finished(state: dict) -> bool:
    return int(state["step"]) >= PRESETS["grid25"]["train"]["steps"]


@pytest.mark.parametrize("path", COMMITTED_GRID25, ids=lambda p: p.name)
def test_committed_grid25_checkpoints_stand_in_for_the_table_gan(path):
    """Each committed grid25-published file is adoptable by ``dgmbench table --dataset grid25`` (no config
    difference from the table's preset for its seed)."""
    state = read_checkpoint(str(path))
    seed = int(state["train_config"]["seed"])
    assert state["family"] == "gan" and train_differences(state, PRESETS["grid25"], seed) == []
    if not _finished(state):  # committed with its optimiser state so another machine can finish it
        pytest.skip(f"{path.name} is a partial training (step {state['step']} of "
                    f"{PRESETS['grid25']['train']['steps']}); python -m baselines train gan --preset "
                    "grid25-published resumes it")


def test_committed_grid25_checkpoints_meet_the_target_over_three_seeds():
    """Issue 20's grid25 target on the PacGAN protocol, as it is stated: over 3 seeds, a mean of >= 23 of 25
    modes captured and >= 85% of samples within 3 std of a mode (2,500 samples per seed). PacGAN2's own
    trials spread by about 2 modes (23.8 +- 0.7 s.e. over 10), so one seed may fall below 23."""
    finished = [p for p in COMMITTED_GRID25 if _finished(read_checkpoint(str(p)))]
    if len(finished) < 3:
        pytest.skip(f"{len(finished)} of the 3 grid25-published seeds are finished")
    test = get_dataset("grid25", "test")
    scores = [mode_coverage(load_baseline(str(p)).sample(2500, generator=torch.Generator().manual_seed(0)),
                            test.modes, test.mode_std) for p in finished]
    modes = sum(mc.modes_captured for mc in scores) / len(scores)
    hq = sum(mc.high_quality_fraction for mc in scores) / len(scores)
    assert modes >= 23 and hq >= 0.85, scores
